"""Handlers for comparing plldb's executor with AWS's own runtime (RIE + awslambdaric 4.2.2): what a handler can
see, every kind of result and error, and its logs. The event's "case" picks one; an event without one (a string,
a number, a list, null) is returned as it came."""

import collections
import datetime
import decimal
import enum
import logging
import math
import os
import signal
import sys
import threading
import time

# Output and a record in the init phase: awslambdaric logs it with no request id.
print("parity: imported")
logging.warning("parity: init warning")
logger = logging.getLogger()


def _public(obj):
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def context(event, context):
    remaining = context.get_remaining_time_in_millis()
    ident, cc = context.identity, context.client_context
    return {
        "type": "%s.%s" % (type(context).__module__, type(context).__qualname__),
        "public": _public(context),
        "aws_request_id_is_str": isinstance(context.aws_request_id, str),
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "tenant_id": context.tenant_id,
        "identity": [type(ident).__name__, ident.cognito_identity_id, ident.cognito_identity_pool_id, repr(ident)],
        "client_context": None if cc is None else [
            type(cc).__name__, cc.custom, cc.env, repr(cc.client), repr(cc), _public(cc),
            None if cc.client is None else _public(cc.client),
        ],
        "w3c": context.w3c() if hasattr(context, "w3c") else "<absent>",
        "remaining_in_range": 0 < remaining <= 30 * 1000,
        "remaining_type": type(remaining).__name__,
        "repr": repr(context),
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
    }


def env(event, context):
    return dict(os.environ)


def process(event, context):
    return {
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "stdout_encoding": sys.stdout.encoding,
        "root_handlers": [type(h).__name__ for h in logging.getLogger().handlers],
        "root_handler_has_sink": [hasattr(h, "log_sink") for h in logging.getLogger().handlers],
        "root_level": logging.getLogger().level,
        "formatter_converter": logging.Formatter.converter.__name__,
        "probe": {
            "argv": sys.argv,
            "main": getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None),
            "stdin": None if sys.stdin is None else [sys.stdin.isatty(), type(sys.stdin).__name__],
            "stdout": [type(sys.stdout).__name__, sys.stdout.isatty(), sys.stdout.encoding],
            "stderr": [type(sys.stderr).__name__, sys.stderr.isatty()],
            "thread": threading.current_thread().name,
            "threads": sorted(t.name for t in threading.enumerate()),
            "recursionlimit": sys.getrecursionlimit(),
            "path": sys.path,
            "sigterm": str(signal.getsignal(signal.SIGTERM)),
            "sigint": str(signal.getsignal(signal.SIGINT)),
            "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("awslambdaric", "simplejson", "runtime_client", "debugpy", "pydevd")),
            "umask": os.umask(os.umask(0)),
            "logging_handlers_children": [type(h).__name__ for h in logging.getLogger("child").handlers],
        },
    }


Point = collections.namedtuple("Point", "x y")


class Color(enum.IntEnum):
    RED = 1


class Label(str, enum.Enum):
    A = "label-a"


_loop = []
_loop.append(_loop)

RESULTS = {
    "none": lambda: None,
    "str": lambda: "plain",
    "unicode": lambda: "\u00fc\u00e9 \u2713 \U0001F680 \u4e2d\u6587 \u2028 \x00 \x7f \"q\" \\",
    "int": lambda: 42,
    "bigint": lambda: 10 ** 40,
    "float": lambda: [0.1, 1e300, -0.0, 3.0, 1e-7],
    "bool": lambda: True,
    "list": lambda: [1, "two", None, [3.5, {"four": 4}]],
    "nested": lambda: {"a": {"b": [{"c": "d", "e": [1, 2, {"f": None}]}]}, "g": "\u00fc"},
    "empty": lambda: {"d": {}, "l": [], "s": ""},
    "tuple": lambda: (1, (2, 3)),
    "namedtuple": lambda: {"p": Point(1, Point(2, 3)), "l": [Point("a", "b")]},
    "bytes": lambda: b"\x00\xffraw bytes\n",
    "bytes_empty": lambda: b"",
    "bytes_nested": lambda: {"b": b"utf-8 \xc3\xbc"},
    "bytes_nested_bad": lambda: [b"\xff"],
    "decimal": lambda: {"d": decimal.Decimal("1.10"), "e": decimal.Decimal("1E+3"), "z": decimal.Decimal("-0.000"), "n": decimal.Decimal("NaN")},
    "decimal_inf": lambda: [decimal.Decimal("Infinity")],
    "nan": lambda: {"nan": math.nan, "inf": math.inf, "-inf": -math.inf},
    "nan_top": lambda: math.nan,
    "keys": lambda: {1: "int", 2.5: "float", True: "bool", None: "none"},
    "bad_key": lambda: {(1, 2): "tuple key"},
    "datetime": lambda: {"when": datetime.datetime(2024, 1, 2, 3, 4, 5)},
    "set": lambda: {1, 2},
    "set_nested": lambda: {"s": {"x"}},
    "object": lambda: object(),
    "circular": lambda: _loop,
    "intenum": lambda: {"c": Color.RED, Color.RED: "key"},
    "strenum": lambda: [Label.A],
    "subclasses": lambda: [collections.OrderedDict(a=1), collections.defaultdict(list, b=[2])],
    "toobig_int": lambda: 10 ** 5000,
    # Past the executor's inline limit: the data pipe's way back.
    "big_str": lambda: "\u00fc" * 300000,
    "big_bytes": lambda: bytes(range(256)) * 1000,
    "big_nan": lambda: [math.nan] + list(range(20000)),
}


def result(event, context):
    return RESULTS[event["value"]]()


class CustomError(Exception):
    pass


def _deeper(kind):
    if kind == "value":
        raise ValueError("boom")
    if kind == "multiline":
        raise ValueError("first line\nsecond line")
    if kind == "empty":
        raise ValueError()
    if kind == "key":
        return {}["missing"]
    if kind == "unicode":
        raise RuntimeError("b\u00f6\u00f6m \u2713 \U0001F680")
    if kind == "chained":
        try:
            {}["missing"]
        except KeyError as e:
            raise CustomError("wrapped") from e
    if kind == "zero":
        return 1 / 0
    if kind == "logformat":
        logger.warning("a number: %d", "not a number")  # awslambdaric's handler lets the formatting error out
        return "logged"
    if kind == "assert":
        assert event_is_never_this, "message"  # noqa: F821
    raise CustomError(kind)


def fail(event, context):
    return _deeper(event["kind"])


def logs(event, context):
    print("print: plain line")
    print("print: unicode \u00fc\u00e9 \u2713 \U0001F680")
    print("print: two\nlines")
    print("print: to stderr", file=sys.stderr)
    sys.stdout.write("write: no newline")
    sys.stdout.flush()
    logger.debug("logging: debug")
    logger.info("logging: info %s", "arg")
    logger.warning("logging: warning\nsecond line")
    logger.error("logging: error")
    logging.getLogger("child").warning("logging: child logger")
    logger.warning({"dict": "message", "n": 1})
    logger.warning("logging: extra", extra={"user_field": "x", "obj": object.__name__})
    try:
        raise KeyError("logged")
    except KeyError:
        logger.exception("logging: exception")
    logger.log(55, "logging: level 55")
    context.log("context.log line\n")
    context.log("context.log: no newline")
    print("print: after")
    return "logged"


def sleep(event, context):
    print("sleep: going to sleep")
    time.sleep(event["seconds"])
    return "woke up"


def crash(event, context):
    print("crash: exiting")
    sys.stdout.flush()
    os._exit(event.get("code", 3))


CASES = {"sleep": sleep, "crash": crash, "context": context, "env": env, "process": process, "result": result, "fail": fail, "logs": logs}


def handler(event, context):
    if not isinstance(event, dict) or "case" not in event:
        return event
    return CASES[event["case"]](event, context)
