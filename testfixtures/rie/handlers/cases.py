"""Handlers for comparing plldb with AWS's own runtime (RIE + awslambdaric): each case returns or prints what
the handler sees, so that two ways of running it can be compared byte for byte. The event's "case" picks one."""

import json
import logging
import os
import sys
import time

print("cases: imported, init phase")
logger = logging.getLogger()


def _obj(o, *fields):
    # awslambdaric's context objects use __slots__: read the documented attributes by name.
    if o is None:
        return None
    return {f: getattr(o, f, "<absent>") for f in fields}


def _client_context(cc):
    if cc is None:
        return None
    return {
        "client": _obj(cc.client, "installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"),
        "custom": cc.custom,
        "env": cc.env,
    }


def _context(context):
    remaining = context.get_remaining_time_in_millis()
    return {
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "client_context": _client_context(context.client_context),
        "identity": _obj(context.identity, "cognito_identity_id", "cognito_identity_pool_id"),
        "tenant_id": getattr(context, "tenant_id", None),
        "remaining_time_positive": 0 < remaining <= 3600 * 1000,
        "repr_type": type(context).__name__,
    }


def _parent():
    try:
        with open("/proc/%d/comm" % os.getppid()) as f:
            return f.read().strip()
    except OSError:
        return None


def _process():
    return {
        "parent": _parent(),
        "argv": sys.argv,
        "executable": sys.executable,
        "cwd": os.getcwd(),
        "path": sys.path,
        "modules_main": getattr(sys.modules.get("__main__"), "__spec__", None) and sys.modules["__main__"].__spec__.name,
        "stdin_isatty": sys.stdin.isatty() if sys.stdin else None,
        "stdout_encoding": sys.stdout.encoding,
        "umask": os.umask(os.umask(0)),
        "root_handlers": [type(h).__name__ for h in logging.getLogger().handlers],
        "root_level": logging.getLogger().level,
    }


def dump(event, context):
    return {
        "event": event,
        "context": _context(context),
        "env": dict(os.environ),
        "process": _process(),
    }


def logs(event, context):
    print("print: plain line")
    print("print: unicode \u00fc\u00e9 \u2713 \U0001F680")
    print("print: two\nlines")
    print("print: to stderr", file=sys.stderr)
    sys.stdout.write("write: no newline")
    sys.stdout.flush()
    logger.info("logging: info %s", "arg")
    logger.warning("logging: warning")
    logger.error("logging: error")
    logging.getLogger("child").warning("logging: child logger")
    context.log("context.log line\n")
    return "logged"


def fail(event, context):
    raise ValueError("boom: " + str(event.get("why")))


def fail_unicode(event, context):
    raise RuntimeError("b\u00f6\u00f6m \u2713 \U0001F680 \u4e2d\u6587")


class CustomError(Exception):
    pass


def fail_custom(event, context):
    try:
        {}["missing"]
    except KeyError as e:
        raise CustomError("wrapped") from e


def result(event, context):
    return event["value"]


def big(event, context):
    # A JSON string of exactly n bytes once marshalled: the quotes are 2 of them.
    return "x" * (event["n"] - 2)


def sleep(event, context):
    print("sleep: going to sleep")
    time.sleep(event["seconds"])
    return "woke up"


def exit_(event, context):
    os._exit(event.get("code", 3))


CASES = {
    "dump": dump,
    "logs": logs,
    "fail": fail,
    "fail_unicode": fail_unicode,
    "fail_custom": fail_custom,
    "result": result,
    "big": big,
    "sleep": sleep,
    "exit": exit_,
}


def handler(event, context):
    if not isinstance(event, dict) or "case" not in event:
        return {"event": event, "note": "no case"}
    return CASES[event["case"]](event, context)
