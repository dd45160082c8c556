"""plldb executor: runs one AWS Lambda function's Python handler for the plldb debug adapter.

The Go side (package adapter/executor) starts this file with two extra pipes: fd 3 carries requests from Go and
fd 4 carries responses and notifications back, both newline-delimited JSON-RPC 2.0. Events are not inside
requests but in raw frames of their own (small ones on fd 3 just ahead of their request, big ones on fd 5; big
payloads, and any that is not strict JSON (bytes, NaN), go back on fd 6), so that each invocation decodes its own
event (see _invoke). stdin, stdout and stderr are
left to the handler, so nothing a handler prints can corrupt the protocol. Standard library only: it has to run
in whatever interpreter (and virtualenv) the developer's function uses, Python 3.9 or later.

Methods (Go -> Python): initialize, invoke, shutdown. Notifications (Python -> Go): log.
"""

import decimal
import importlib
import importlib.util
import io
import json
import logging
import os
import queue
import sys
import threading
import time
import traceback

_HERE = os.path.abspath(__file__)
_REAL_STDOUT = sys.stdout
_REAL_STDERR = sys.stderr
_perf_ns = time.perf_counter_ns


def _diag(msg):
    """Executor diagnostics: the real stderr, which Go forwards as output outside any invocation."""
    try:
        _REAL_STDERR.write("[plldb] " + msg + "\n")
        _REAL_STDERR.flush()
    except Exception:
        pass


def _dumps(obj):
    """JSON for the wire: one line, strict (no NaN, which Go would refuse), UTF-8 where possible."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: let json escape them instead
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii")


class _Wire:
    def __init__(self, rfd, wfd):
        self.reader = os.fdopen(rfd, "rb", buffering=1 << 16)
        self._w = os.fdopen(wfd, "wb", buffering=1 << 16)
        self._lock = threading.Lock()

    def send_raw(self, data):
        with self._lock:
            try:
                self._w.write(data)
                self._w.flush()
            except (OSError, ValueError):
                # Go has gone away: nobody is left to answer, so do not linger as an orphan.
                os._exit(70)

    def send(self, obj):
        self.send_raw(_dumps(obj) + b"\n")

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def reply(self, rpc_id, result):
        self.send({"jsonrpc": "2.0", "id": rpc_id, "result": result})

    def reply_error(self, rpc_id, code, message):
        self.send({"jsonrpc": "2.0", "id": rpc_id, "error": {"code": code, "message": message}})


class _DataIn:
    """Events from Go (all of them, see _invoke), read by their own thread: `<ref> <length>\\n<bytes>`."""

    def __init__(self, fd):
        self._r = os.fdopen(fd, "rb", buffering=1 << 16)
        self._cv = threading.Condition()
        self._frames = {}
        self._eof = False

    def run(self):
        try:
            while True:
                header = self._r.readline()
                if not header:
                    break
                ref, size = header.split()
                data = self._r.read(int(size))
                if len(data) != int(size):
                    break
                self.put(int(ref), data)
        except (OSError, ValueError) as e:
            _diag("data channel: %s" % e)
        with self._cv:
            self._eof = True
            self._cv.notify_all()

    def put(self, ref, data):
        with self._cv:
            self._frames[ref] = data
            self._cv.notify_all()

    def take(self, ref):
        with self._cv:
            while ref not in self._frames and not self._eof:
                self._cv.wait()
            return self._frames.pop(ref, None)


class _DataOut:
    """Bulk bodies to Go (payloads over the inline limit), written before the JSON-RPC answer naming them."""

    def __init__(self, fd):
        self._w = os.fdopen(fd, "wb", buffering=1 << 16)
        self._lock = threading.Lock()

    def send(self, ref, data):
        with self._lock:
            try:
                self._w.write(b"%d %d\n" % (ref, len(data)))
                self._w.write(data)
                self._w.flush()
            except (OSError, ValueError):
                os._exit(70)


# Payloads up to this size travel inside the JSON-RPC message; bigger ones over the data pipe, so a 6 MB payload
# is copied once instead of being re-encoded and re-scanned by every JSON layer on the Go side.
_INLINE_MAX = 32 << 10

_wire = None
_data_in = None
_data_out = None

# ---------------------------------------------------------------------------------------------------------------
# Output capture. Every thread carries the request id it works for (_plldb_rid); threads created by a handler
# inherit it (see _thread_init), so their output is attributed too (best effort: pooled threads reused across
# requests keep the id of the request that created them).


_active_threads = getattr(threading, "_active", None)
_get_ident = threading.get_ident


def _current_rid():
    # Looked up without threading.current_thread(), which would create a _DummyThread (and recurse through
    # _thread_init) for threads started with _thread.start_new_thread.
    if _active_threads is None:
        return getattr(threading.current_thread(), "_plldb_rid", None)
    t = _active_threads.get(_get_ident())
    return None if t is None else getattr(t, "_plldb_rid", None)


_orig_thread_init = threading.Thread.__init__


def _thread_init(self, *args, **kwargs):
    _orig_thread_init(self, *args, **kwargs)
    self._plldb_rid = _current_rid()


class _LogRouter:
    """Buffers partial lines per (request, stream) and sends whole lines as `log` notifications."""

    def __init__(self):
        self._lock = threading.Lock()
        self._partial = {}

    def write(self, rid, stream, text):
        if not text:
            return
        key = (rid, stream)
        with self._lock:
            buf = self._partial.pop(key, "") + text
            cut = buf.rfind("\n") + 1
            if cut < len(buf):
                self._partial[key] = buf[cut:]
            out = buf[:cut]
        if out:
            _wire.notify("log", {"requestId": rid, "stream": stream, "text": out})

    def whole(self, rid, stream, text, frame, record):
        """Sends a record (a logging record, an error report) in one notification, after what the stream holds of
        an unfinished line: awslambdaric writes both to the same stdout, in this order, when Lambda gives it no
        telemetry pipe (text is then what stdout gets). With the pipe, it writes the record as one frame of type
        frame and message record instead, and the unfinished line stays in stdout: lead says how much of text
        that is, so the layer proxy can do either. record is sent only when it is not text itself (the error
        report), so that a big record does not cross the pipes twice."""
        with self._lock:
            lead = self._partial.pop((rid, stream), "")
        note = {
            "requestId": rid,
            "stream": stream,
            "text": lead + text,
            "lead": lead,
            "frame": frame,
            "time": time.time_ns() // 1000,
        }
        if record != text:
            note["record"] = record
        _wire.notify("log", note)

    def flush(self, rid):
        with self._lock:
            rest = [(k[1], self._partial.pop(k)) for k in list(self._partial) if k[0] == rid]
        for stream, text in rest:
            _wire.notify("log", {"requestId": rid, "stream": stream, "text": text})


_router = _LogRouter()


class _BinaryProxy:
    def __init__(self, text_proxy):
        self._t = text_proxy

    def write(self, b):
        self._t.write(bytes(b).decode("utf-8", "replace"))
        return len(b)

    def flush(self):
        self._t.flush()

    def __getattr__(self, name):
        return getattr(self._t._real.buffer, name)


class Unbuffered(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr: routes writes by the writing thread's request id. Named after
    awslambdaric's wrapper of the two, which is what type(sys.stdout) says in Lambda."""

    def __init__(self, stream, real):
        super().__init__()
        self._stream = stream
        self._real = real
        self.buffer = _BinaryProxy(self)

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        rid = _current_rid()
        if rid is None:
            _REAL_STDERR.write(s)
            _REAL_STDERR.flush()
        else:
            _router.write(rid, self._stream, s)
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if _current_rid() is None:
            _REAL_STDERR.flush()

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._real.fileno()

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"


# Logging, set up as awslambdaric 4.2.2's _setup_logging does it, from the variables Lambda derives from the
# function's LoggingConfig: AWS_LAMBDA_LOG_FORMAT (JSON or text) and AWS_LAMBDA_LOG_LEVEL. The class names are
# awslambdaric's, for handlers that look at the root logger's handlers.

_LOG_FORMAT_JSON = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
_LOG_LEVEL = {None: "", "TRACE": "DEBUG"}.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL"), os.environ.get("AWS_LAMBDA_LOG_LEVEL")).upper()
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# awslambdaric's frame types (lambda_runtime_log_utils._TEXT_FRAME_TYPES / _JSON_FRAME_TYPES), by level.
_TEXT_FRAME_TYPES = {0: 0xA55A0003, 10: 0xA55A000B, 20: 0xA55A000F, 30: 0xA55A0013, 40: 0xA55A0017, 50: 0xA55A001B}
_JSON_FRAME_TYPES = {0: 0xA55A0002, 10: 0xA55A000A, 20: 0xA55A000E, 30: 0xA55A0012, 40: 0xA55A0016, 50: 0xA55A001A}
_DEFAULT_FRAME_TYPE = _TEXT_FRAME_TYPES[0]
_ERROR_FRAME_TYPE = (_JSON_FRAME_TYPES if _LOG_FORMAT_JSON else _TEXT_FRAME_TYPES)[40]


def _format_log_level(record):
    return min(50, max(0, record.levelno)) // 10 * 10


def _emit_record(text, frame, record):
    rid = _current_rid()
    if rid is None:
        _REAL_STDERR.write(text)
        _REAL_STDERR.flush()
    else:
        _router.whole(rid, "stdout", text, frame, record)


class StandardLogSink(object):
    """awslambdaric's log sink. It writes as awslambdaric's StandardLogSink (no telemetry pipe, as under the
    Runtime Interface Emulator): records go to stdout as they are, and an error report's lines are joined with
    \\r, which line-based log capture keeps as one record. Each record also carries what awslambdaric's
    FramedTelemetryLogSink would write to Lambda's telemetry pipe (frame type and message: an error report's
    lines joined with \\n), for the layer proxy to write when its sandbox has that pipe."""

    def log(self, msg, frame_type=None):
        _emit_record(msg, frame_type or _DEFAULT_FRAME_TYPE, msg)

    def log_error(self, message_lines):
        _emit_record("\r".join(message_lines) + "\n", _ERROR_FRAME_TYPE, "\n".join(message_lines))


_LOG_SINK = StandardLogSink()


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        # Records made while the handler's module is imported (Lambda's init phase) have no request id, as in
        # awslambdaric, although the executor imports on the invocation's thread.
        t = _active_threads.get(_get_ident()) if _active_threads is not None else threading.current_thread()
        if t is None or getattr(t, "_plldb_init", False):
            record.aws_request_id, record.tenant_id = "", None
        else:
            record.aws_request_id = getattr(t, "_plldb_rid", None) or ""
            record.tenant_id = getattr(t, "_plldb_tenant", None)
        return True


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink):
        logging.Handler.__init__(self)
        self.log_sink = log_sink

    def emit(self, record):
        msg = self.format(record)
        self.log_sink.log(msg)


class LambdaLoggerHandlerWithFrameType(logging.Handler):
    def __init__(self, log_sink):
        super().__init__()
        self.log_sink = log_sink

    def emit(self, record):
        self.log_sink.log(
            self.format(record),
            frame_type=getattr(record, "_frame_type", None) or _TEXT_FRAME_TYPES.get(_format_log_level(record)),
        )


_RESERVED_FIELDS = {
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info", "exc_text",
    "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
}
_encode_log_json = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    """awslambdaric's JSON log record (lambda_runtime_log_utils.JsonFormatter)."""

    def __init__(self):
        super().__init__(datefmt=_DATETIME_FORMAT)

    def format(self, record):
        record.levelno = _format_log_level(record)
        record.levelname = logging.getLevelName(record.levelno)
        record._frame_type = _JSON_FRAME_TYPES.get(record.levelno, _JSON_FRAME_TYPES[0])
        exc_info = record.exc_info
        result = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": "{}:{}:{}".format(record.pathname, record.funcName, record.lineno) if record.exc_info else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        result.update(
            (key, value) for key, value in record.__dict__.items() if key not in _RESERVED_FIELDS and key not in result
        )
        result = {k: v for k, v in result.items() if v is not None}
        return _encode_log_json(result) + "\n"


def _install_output_capture():
    threading.Thread.__init__ = _thread_init
    sys.stdout = Unbuffered("stdout", _REAL_STDOUT)
    sys.stderr = Unbuffered("stderr", _REAL_STDERR)
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    if _LOG_FORMAT_JSON or _LOG_LEVEL:
        handler = LambdaLoggerHandlerWithFrameType(_LOG_SINK)
    else:
        handler = LambdaLoggerHandler(_LOG_SINK)
    if _LOG_FORMAT_JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
            )
        )
    if _LOG_LEVEL in logging._nameToLevel:
        root.setLevel(_LOG_LEVEL)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)


# ---------------------------------------------------------------------------------------------------------------
# The context object, as awslambdaric 4.2.2 (lambda_context.py) builds it. The classes claim awslambdaric's
# module so that a handler (or a debugger's variables view) sees the same type names as in Lambda.

_W3C_ALLOWED_FIELDS = ("traceparent", "tracestate", "baggage")


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class Client(object):
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"installation_id={self.installation_id},"
            f"app_title={self.app_title},"
            f"app_version_name={self.app_version_name},"
            f"app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}"
            "])"
        )


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return f"{self.__class__.__name__}([custom={self.custom},env={self.env},client={self.client}])"


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field, None))
    return obj


class LambdaContext(object):
    def __init__(
        self, invoke_id, client_context, cognito_identity, epoch_deadline_time_in_ms, invoked_function_arn=None, tenant_id=None
    ):
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = self._extract_and_strip_w3c(client_context)
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta if delta > 0 else 0

    def w3c(self):
        """The W3C trace context the caller sent in the client context's w3c member."""
        return dict(self._w3c_fields)

    @staticmethod
    def _extract_and_strip_w3c(client_context):
        if not isinstance(client_context, dict) or "w3c" not in client_context:
            return {}
        raw = client_context.pop("w3c")
        if not isinstance(raw, dict):
            return {}
        return {k: raw[k] for k in _W3C_ALLOWED_FIELDS if isinstance(raw.get(k), str)}

    def log(self, msg):
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "log_sink"):
                handler.log_sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


for _cls in (CognitoIdentity, Client, ClientContext, LambdaContext):
    _cls.__module__ = "awslambdaric.lambda_context"


# ---------------------------------------------------------------------------------------------------------------
# Errors, as awslambdaric 4.2.2 (bootstrap.py) reports them to the caller and in the log.

_NBSP = "\u00a0"
# awslambdaric logs this before an init error's report (lambda_literals.lambda_unhandled_exception_warning_message).
_UNHANDLED_WARNING = (
    "LAMBDA_WARNING: "
    "Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START log entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


def _error(message, error_type, stack=None, rid=None):
    """awslambdaric's make_error: all four keys, always, in this order ("" and [] for what is missing)."""
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": rid if rid is not None else "",
        "stackTrace": stack if stack else [],
    }


def _stack_from(tb):
    # Plain tuples, as awslambdaric's extract_traceback makes them: format_list then has no column positions,
    # so Python 3.11+'s ^^^^ marker lines are not drawn.
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if frame[0] != _HERE:  # the executor's own frames are the runtime's, not the user's
            return traceback.format_list(frames[i:])
    return []


def _exception_error(exc, rid):
    return _error(str(exc), type(exc).__name__, _stack_from(exc.__traceback__), rid)


def _indent(line):
    # awslambdaric's replace_line_indentation(line, " ", NBSP): leading spaces survive log processors that trim.
    n = len(line) - len(line.lstrip(" "))
    return _NBSP * n + line[n:]


def _log_error(err):
    """awslambdaric's log_error for the log format in force."""
    if _LOG_FORMAT_JSON:
        doc = {"timestamp": time.strftime(_DATETIME_FORMAT, time.gmtime(time.time())), "level": "ERROR"}
        doc.update(err)
        _LOG_SINK.log_error([_to_json(doc)])
        return
    desc = "[ERROR]"
    if err.get("errorType"):
        desc += " " + err["errorType"]
    if err.get("errorMessage"):
        if err.get("errorType"):
            desc += ":"
        desc += " " + err["errorMessage"]
    lines = [desc]
    stack = err.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
            else:
                lines.extend(_indent(line) for line in element.splitlines())
    _LOG_SINK.log_error(lines)


class _Fault(Exception):
    def __init__(self, error_type, message, stack=None):
        super().__init__(message)
        self.error = _error(message, error_type, stack)


# ---------------------------------------------------------------------------------------------------------------
# Handler loading and reloading.


def _under(path, root):
    return path == root or path.startswith(root + os.sep)


class _Loader:
    """Imports the handler lazily and re-imports it when a tracked source file changes.

    Only files of modules actually loaded from the code or layer folders are watched (an os.stat each per
    invocation): editing a file nobody imported yet needs no reload, since it is read fresh when imported.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.handler_spec = ""
        self.code_dir = ""
        self.layer_roots = []
        self.handler = None
        self.tracked = {}  # path -> (mtime_ns, size, ino) at the time it was first seen
        self.modules_seen = -1
        self.last_scan_start = 0

    def configure(self, handler_spec, code_dir, layer_roots):
        self.handler_spec = handler_spec
        self.code_dir = os.path.abspath(code_dir)
        self.layer_roots = [os.path.abspath(p) for p in layer_roots]

    def _root_of(self, path):
        if _under(path, self.code_dir):
            return self.code_dir
        best = None
        for root in self.layer_roots:
            if _under(path, root) and (best is None or len(root) > len(best)):
                best = root
        return best

    @staticmethod
    def _sig(path):
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _track_new_modules(self):
        if len(sys.modules) == self.modules_seen:
            return
        for mod in list(sys.modules.values()):
            f = getattr(mod, "__file__", None)
            if not f or not f.endswith(".py"):
                continue
            f = os.path.abspath(f)
            if f not in self.tracked and self._root_of(f) is not None:
                self.tracked[f] = self._sig(f)
        self.modules_seen = len(sys.modules)

    def _changed(self):
        return [p for p, sig in self.tracked.items() if self._sig(p) != sig]

    def _drop(self, changed):
        """Forgets user modules so the next import reads them again: every module from the code folder (its
        modules import one another freely), and from layers the top-level packages holding a changed file
        (reloading all of a big layer, or C extensions in it, would be slow or unsafe)."""
        layer_tops = set()
        for path in changed:
            root = self._root_of(path)
            if root is not None and root != self.code_dir:
                layer_tops.add(os.path.relpath(path, root).split(os.sep)[0].split(".")[0])
            try:
                os.unlink(importlib.util.cache_from_source(path))
            except (OSError, NotImplementedError, ValueError):
                pass  # a stale .pyc with equal mtime and size would otherwise shadow the edit
        dropped = 0
        for name, mod in list(sys.modules.items()):
            f = getattr(mod, "__file__", None)
            paths = [f] if f else list(getattr(mod, "__path__", None) or [])
            for p in paths:
                p = os.path.abspath(p)
                root = self._root_of(p)
                if root is None:
                    continue
                if root == self.code_dir or os.path.relpath(p, root).split(os.sep)[0].split(".")[0] in layer_tops:
                    del sys.modules[name]
                    dropped += 1
                    break
        for path in changed:
            self.tracked.pop(path, None)
        self.tracked = {p: s for p, s in self.tracked.items() if self._root_of(p) != self.code_dir}
        self.modules_seen = -1
        importlib.invalidate_caches()
        return dropped

    def get(self, arrived):
        """Returns (handler, scan_ns); raises _Fault or the import's exception.

        A scan that started after this invocation arrived has seen every edit made before it, so concurrent
        invocations waiting here share one scan instead of repeating it."""
        with self.lock:
            t0 = _perf_ns()
            if self.tracked and self.last_scan_start < arrived:
                self.last_scan_start = t0
                changed = self._changed()
                if changed:
                    n = self._drop(changed)
                    self.handler = None
                    _diag("reloading %s: %d module(s) dropped after changes to %s" % (
                        self.handler_spec, n, ", ".join(os.path.relpath(p, self._root_of(p) or "/") for p in changed[:5])))
            scan_ns = _perf_ns() - t0
            if self.handler is None:
                _preview_runtime_warning()
                try:
                    self.handler = self._import()
                except BaseException:
                    # Lambda answers an init error and resets the sandbox: the next invocation imports the
                    # handler's module afresh, and its module-level code runs again. Forget the code folder's
                    # modules, as after an edit, so that it does here too.
                    self._drop([])
                    raise
            self._track_new_modules()
            return self.handler, scan_ns

    def _import(self):
        handler = self.handler_spec
        try:
            modname, fname = handler.rsplit(".", 1)
        except ValueError as e:
            raise _Fault("Runtime.MalformedHandlerName", "Bad handler '{}': {}".format(handler, str(e)))
        try:
            if modname.split(".")[0] in sys.builtin_module_names:
                raise _Fault(
                    "Runtime.BuiltInModuleConflict", "Cannot use built-in module {} as a handler module".format(modname)
                )
            mod = importlib.import_module(modname.replace("/", "."))
        except ImportError as e:
            raise _Fault("Runtime.ImportModuleError", "Unable to import module '{}': {}".format(modname, str(e)))
        except SyntaxError as e:
            trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
            raise _Fault(
                "Runtime.UserCodeSyntaxError", "Syntax error in module '{}': {}".format(modname, str(e)), trace
            )
        finally:
            self._track_new_modules()  # even a failed import may have loaded user modules worth watching
        try:
            return getattr(mod, fname)
        except AttributeError:
            raise _Fault("Runtime.HandlerNotFound", "Handler '{}' missing on module '{}'".format(fname, modname))


_loader = _Loader()

# ---------------------------------------------------------------------------------------------------------------
# Results, encoded as awslambdaric 4.2.2's lambda_runtime_marshaller does it: simplejson's JSONEncoder with
# use_decimal=False, allow_nan=True and a default() that writes a Decimal's own digits (NaN as NaN), ensure_ascii
# off only for the runtimes that turned it off, and bytes returned as they are. simplejson is not in the standard
# library, so what it does differently from json is reproduced here: the C json encoder does the common case
# (plain dicts, lists, str, int, float, bool, None, checked exactly by type so a subclass never takes it), and
# anything else (Decimal, NaN, namedtuples, bytes inside the result, subclasses) goes through _iterencode, a port
# of simplejson's pure-Python encoder restricted to the options awslambdaric uses.

_ENSURE_ASCII = os.environ.get("AWS_EXECUTION_ENV") not in {
    "AWS_Lambda_python3.12",
    "AWS_Lambda_python3.13",
    "AWS_Lambda_python3.14",
    "AWS_Lambda_python3.15",
}
_json_fast = json.JSONEncoder(ensure_ascii=_ENSURE_ASCII, allow_nan=False)
_encode_str = json.encoder.encode_basestring_ascii if _ENSURE_ASCII else json.encoder.encode_basestring
_PLAIN_SCALARS = frozenset((str, int, float, bool, type(None)))


def _plain(value):
    """True when value holds only types the C json encoder writes exactly as simplejson does."""
    stack = [value]
    seen = set()  # containers already checked: shared ones once, and a cycle (the encoder reports it) ends
    pop, push, scalars = stack.pop, stack.append, _PLAIN_SCALARS
    while stack:
        v = pop()
        t = type(v)
        if t is dict or t is list:
            if id(v) in seen:
                continue
            seen.add(id(v))
        if t is dict:
            for k, x in v.items():
                if type(k) is not str:
                    return False
                tx = type(x)
                if tx is dict or tx is list:
                    push(x)
                elif tx not in scalars:
                    return False
        elif t is list:
            for x in v:
                tx = type(x)
                if tx is dict or tx is list:
                    push(x)
                elif tx not in scalars:
                    return False
        elif t not in scalars:
            return False
    return True


def _floatstr(o):
    if o != o:
        return "NaN"
    if o == float("inf"):
        return "Infinity"
    if o == -float("inf"):
        return "-Infinity"
    return float.__repr__(o)


def _encode_int(value):
    if type(value) is not int:
        value = int(value)  # simplejson: "do not trust custom str/repr"
    return str(value)


def _call_method(obj, name):
    method = getattr(obj, name, None)
    if callable(method):
        try:
            return (method(),)
        except TypeError:
            pass
    return None


def _default(obj):
    # awslambdaric's Encoder.default: a Decimal's digits as they are (RawJSON), NaN Decimals as NaN.
    if isinstance(obj, decimal.Decimal):
        if obj.is_nan():
            return float("nan")
        return _Raw(str(obj))
    raise TypeError("Object of type %s is not JSON serializable" % obj.__class__.__name__)


class _Raw(object):
    __slots__ = ["text"]

    def __init__(self, text):
        self.text = text


def _stringify_key(key):
    if isinstance(key, bytes):
        return str(key, "utf-8")
    if isinstance(key, float):
        return _floatstr(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return _encode_int(key)
    raise TypeError("keys must be str, int, float, bool or None, not %s" % key.__class__.__name__)


def _scalar(o):
    """simplejson's text for a scalar, or None for anything else."""
    if isinstance(o, str):
        return _encode_str(o)
    if isinstance(o, bytes):
        return _encode_str(str(o, "utf-8"))
    if isinstance(o, _Raw):
        return o.text
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, int):
        return _encode_int(o)
    if isinstance(o, float):
        return _floatstr(o)
    return None


def _iterencode(o, out, markers, methods_tried=False):
    text = _scalar(o)
    if text is not None:
        out.append(text)
        return
    asdict = None if methods_tried else _call_method(o, "_asdict")
    if asdict:
        _encode_method(o, asdict[0], out, markers)
    elif isinstance(o, (list, tuple)):
        _encode_list(o, out, markers)
    elif isinstance(o, dict):
        _encode_dict(o, out, markers)
    else:
        marker = id(o)
        if marker in markers:
            raise ValueError("Circular reference detected")
        markers[marker] = o
        try:
            _iterencode(_default(o), out, markers)
        finally:
            markers.pop(marker, None)


def _encode_method(o, dct, out, markers):
    if not isinstance(dct, dict):
        raise TypeError("_asdict() must return a dict, not %s" % (type(dct).__name__,))
    marker = id(o)
    if marker in markers:
        raise ValueError("Circular reference detected")
    markers[marker] = o
    try:
        _encode_dict(dct, out, markers)
    finally:
        markers.pop(marker, None)


def _encode_item(value, out, markers):
    text = _scalar(value)
    if text is not None:
        out.append(text)
        return
    asdict = _call_method(value, "_asdict")
    if asdict:
        _encode_method(value, asdict[0], out, markers)
    elif isinstance(value, (list, tuple)):
        _encode_list(value, out, markers)
    elif isinstance(value, dict):
        _encode_dict(value, out, markers)
    else:
        _iterencode(value, out, markers, True)


def _encode_list(lst, out, markers):
    if not lst:
        out.append("[]")
        return
    marker = id(lst)
    if marker in markers:
        raise ValueError("Circular reference detected")
    markers[marker] = lst
    try:
        out.append("[")
        first = True
        for value in lst:
            if first:
                first = False
            else:
                out.append(", ")
            _encode_item(value, out, markers)
        out.append("]")
    finally:
        markers.pop(marker, None)


def _encode_dict(dct, out, markers):
    if not dct:
        out.append("{}")
        return
    marker = id(dct)
    if marker in markers:
        raise ValueError("Circular reference detected")
    markers[marker] = dct
    try:
        out.append("{")
        first = True
        for key, value in dct.items():
            if not isinstance(key, str):
                key = _stringify_key(key)
            if first:
                first = False
            else:
                out.append(", ")
            out.append(_encode_str(key))
            out.append(": ")
            _encode_item(value, out, markers)
        out.append("}")
    finally:
        markers.pop(marker, None)


def _encode(value):
    """awslambdaric's to_json: the text simplejson's encoder gives value; and whether the C json encoder wrote it,
    which makes it strict JSON (the other path may write NaN, Infinity or a Decimal's "Infinity")."""
    if isinstance(value, str):
        return _encode_str(value), True
    if _plain(value):
        try:
            return _json_fast.encode(value), True
        except ValueError as e:
            if not str(e).startswith("Out of range float"):
                raise
    out = []
    _iterencode(value, out, {})
    return "".join(out), False


def _to_json(value):
    return _encode(value)[0]


def _marshal(value):
    """The result as the caller gets it: (body, content type, strict JSON). bytes go as they are, with
    awslambdaric's content type for them; anything else as JSON. Lone surrogates, which awslambdaric cannot send
    at all, are written as the \\uXXXX escapes they can only stand in (a JSON string)."""
    if isinstance(value, bytes):
        return value, "application/unknown", False
    text, strict = _encode(value)
    return text.encode("utf-8", "backslashreplace"), "application/json", strict


# ---------------------------------------------------------------------------------------------------------------
# Invocations.


def _context_json(text, name):
    """A context header's JSON text, decoded here rather than in the request line for the event's reason (see
    _invoke), and failing as awslambdaric's parse_json_header does."""
    if not text:
        return None
    try:
        return json.loads(text)
    except Exception as e:
        raise _Fault("Runtime.LambdaContextUnmarshalError", "Unable to parse {} JSON: {}".format(name, str(e))) from None


def _preview_runtime_warning():
    """awslambdaric's warning at the start of a preview runtime (bootstrap._log_preview_runtime_warning)."""
    if os.environ.get("LAMBDA_DISABLE_PREVIEW_WARN", "") or os.environ.get("AWS_EXECUTION_ENV", "") != "AWS_Lambda_python3.15":
        return
    link = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html"
    if os.environ.get("AWS_REGION", "").startswith("cn-"):
        link = "https://docs.amazonaws.cn/lambda/latest/dg/lambda-runtimes.html"
    logging.warning(
        "LAMBDA_WARNING: This is a preview runtime version and should not be used for production workloads. "
        "For further information and to provide feedback, see " + link + "\r"
    )


def _init_error(err):
    """Reports an init error (the handler's module could not be imported or has no handler) as awslambdaric's
    run() does: its LAMBDA_WARNING record, then the error, both without a request id."""
    me = threading.current_thread()
    me._plldb_init = True
    try:
        logging.warning(_UNHANDLED_WARNING)
    finally:
        me._plldb_init = False
    _log_error(err)


# The variables that carry AWS credentials, as Lambda sets them from the execution role. An invocation that comes
# with credentials has them in os.environ while it runs (its imports, its handler, the processes it starts), and the
# process's own values (normally none: Go never passes the developer's shell's on) come back afterwards, so that no
# invocation runs with another's. One sandbox runs one invocation at a time, so os.environ is the invocation's.
_CREDENTIAL_VARS = (
    ("accessKeyId", "AWS_ACCESS_KEY_ID"),
    ("secretAccessKey", "AWS_SECRET_ACCESS_KEY"),
    ("sessionToken", "AWS_SESSION_TOKEN"),
)
_BASE_CREDENTIALS = {name: os.environ.get(name) for _, name in _CREDENTIAL_VARS}


def _set_credentials(creds):
    """Sets creds (a dict, or None for the process's own) in os.environ. Never logs them."""
    for key, name in _CREDENTIAL_VARS:
        value = creds.get(key) if creds else _BASE_CREDENTIALS[name]
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)


def _invoke(rpc_id, params):
    arrived = _perf_ns()
    rid = params.get("requestId") or ""
    me = threading.current_thread()
    me._plldb_rid = rid
    me._plldb_tenant = params.get("tenantId") or None
    # Thread names are the debug adapter's thread model (adapter/dap/threads.go): it shows "plldb-invoke <rid>"
    # as "<function> <request id>", and hides the executor's own threads (MainThread and every other "plldb-"
    # name: plldb-control, plldb-data, and this thread between invocations, plldb-idle).
    me.name = "plldb-invoke " + rid
    scan_ns = 0
    payload = None
    content_type = "application/json"
    strict = True
    err = None
    creds = params.get("credentials")
    try:
        if creds:
            _set_credentials(creds)
        trace_id = params.get("traceId")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            # Lambda imports the handler in its init phase, before any invocation; the executor does it on the
            # first invocation (and again after an edit). Its failures are init errors: no request id in the
            # document or in records logged meanwhile, and awslambdaric's warning first.
            me._plldb_init = True
            try:
                handler, scan_ns = _loader.get(arrived)
            finally:
                me._plldb_init = False
        except _Fault as f:
            err = f.error
        except SystemExit:
            raise
        except BaseException as e:  # noqa: B036 - as the handler's own failures below
            err = _exception_error(e, None)  # awslambdaric's build_fault_result
        if err is not None:
            _init_error(err)
        else:
            try:
                ctx = LambdaContext(
                    rid,
                    _context_json(params.get("clientContext"), "Client Context"),
                    _context_json(params.get("cognitoIdentity"), "Cognito Identity"),
                    int(params.get("deadlineMs") or 0),
                    params.get("invokedFunctionArn"),
                    me._plldb_tenant,
                )
                ref = params.get("eventRef")
                raw = _data_in.take(ref) if ref else None
                if raw is None:
                    raise RuntimeError("event body %s never arrived" % ref)
                # The event comes as raw bytes in a frame of its own, never inside the request line, so that it
                # is decoded here, where a failure is this invocation's alone. Go's check lets through JSON that
                # json cannot decode (invalid UTF-8, nesting past the recursion limit, integers past
                # int_max_str_digits); answer those as awslambdaric's unmarshal_request does (Exception, which
                # covers RecursionError and UnicodeDecodeError): Runtime.UnmarshalError, no stack trace.
                try:
                    event = json.loads(raw)
                except RecursionError as e:
                    # awslambdaric decodes with simplejson, whose C scanner says "... from a string".
                    msg = str(e).replace(" from a unicode string", " from a string")
                    raise _Fault("Runtime.UnmarshalError", "Unable to unmarshal input: {}".format(msg)) from None
                except Exception as e:
                    raise _Fault("Runtime.UnmarshalError", "Unable to unmarshal input: {}".format(str(e))) from None
                result = handler(event, ctx)
                try:
                    payload, content_type, strict = _marshal(result)
                except Exception as e:
                    raise _Fault("Runtime.MarshalError", "Unable to marshal response: {}".format(str(e))) from None
            except _Fault as f:
                err = dict(f.error, requestId=rid)
            except SystemExit:
                raise
            except BaseException as e:  # noqa: B036 - every failure must become an answer, never a silent thread end
                err = _exception_error(e, rid)
            if err is not None:
                _log_error(err)
    except SystemExit as e:
        # Lambda's runtime process ends here and the sandbox is reset; do the same, Go reports the exit.
        _router.flush(rid)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        os._exit(code)
    finally:
        if creds:
            _set_credentials(None)
        _router.flush(rid)
        me._plldb_rid = None
        me._plldb_tenant = None
        me.name = "plldb-idle"
    if err is not None:
        # errorDoc: the document as awslambdaric posts it, byte for byte (its encoder, its separators).
        _wire.reply(rpc_id, {"error": err, "errorDoc": _to_json(err), "scanNs": scan_ns})
        return
    # Only strict JSON may travel inside the JSON-RPC line (Go parses it); bytes, NaN and the like take the data
    # pipe whatever their size.
    if (len(payload) > _INLINE_MAX or not strict) and params.get("ref"):
        _data_out.send(params["ref"], payload)
        res = {"payloadRef": params["ref"], "scanNs": scan_ns}
        if content_type != "application/json":
            res["contentType"] = content_type
        _wire.reply(rpc_id, res)
    else:
        head = b'{"jsonrpc":"2.0","id":' + _dumps(rpc_id) + b',"result":{"payload":'
        _wire.send_raw(head + payload + b',"scanNs":' + str(scan_ns).encode() + b"}}\n")


def _run_invocations(invocations):
    """Runs invocations on the main thread, one after another, until the process ends.

    Each sandbox serves one invocation at a time (the Go side's pool gives a concurrent invocation a sandbox of its
    own), and awslambdaric runs the handler on the main thread: a handler may rely on that (signal.signal and
    signal.alarm work only there, threading.main_thread() is its own thread). The control pipe is read on a
    thread of its own meanwhile, so that a handler that never returns still lets Go shut the process down."""
    while True:
        rpc_id, params = invocations.get()
        try:
            _invoke(rpc_id, params)
        except BaseException as e:  # noqa: B036 - the loop must outlive any failure to answer
            _diag("invocation failed: %r" % (e,))

# ---------------------------------------------------------------------------------------------------------------
# Start-up and the request loop.


def _setup_sys_path(code_dir, layer_dirs):
    """Lambda's order: the code folder, each layer's python/ folders, then the interpreter's own path."""
    ver = "python%d.%d" % sys.version_info[:2]
    front = [code_dir]
    for layer in layer_dirs:
        site = os.path.join(layer, "lib", ver, "site-packages")
        if os.path.isdir(site):
            front.append(site)
        front.append(layer)
    here = os.path.dirname(_HERE)
    rest = [p for p in sys.path if p not in front and p not in ("", here)]
    sys.path[:] = front + rest
    return front[1:]


# How long a new debugpy connection has to present the token before it is closed, and the most its first message
# may hold: plldb sends pydevdAuthorize (about 150 bytes) as soon as it has connected.
_AUTHORIZE_TIMEOUT = 3.0
_AUTHORIZE_MAX = 4096


def _require_access_token(token):
    """Makes debugpy serve only connections that present token (pydevd's pydevdAuthorize) before anything else.

    pydevd can check a token, but it accepts every connection first, and a new one replaces the current one (and
    clears its breakpoints): any local user could knock plldb off. And it keeps one process-wide "authenticated"
    flag, so a login racing that hand-over could authorize the newcomer. So, before debugpy creates its debugger
    and opens its port:
    - the listening socket hands pydevd only connections whose first message, peeked without consuming it, is
      pydevdAuthorize with the token; others are closed at once and the current connection is left alone;
    - pydevd's _Authentication is replaced by one bound to the connection that logged in (its reader thread, on
      which pydevd reads and checks every request of that connection), which pydevd then checks as usual.
    The token came over the JSON-RPC pipe; it is never written anywhere.
    """
    import hmac
    import socket

    import debugpy.server.api  # noqa: F401  (puts debugpy's vendored pydevd on sys.path)
    import pydevd

    expected = token.encode("utf-8")

    def presents_token(conn):
        # The first DAP message, read with MSG_PEEK: pydevd reads it again and logs in with it.
        deadline = time.monotonic() + _AUTHORIZE_TIMEOUT
        want = 64
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            conn.settimeout(left)
            data = conn.recv(want, socket.MSG_PEEK)
            if not data:
                return False
            head, sep, body = data.partition(b"\r\n\r\n")
            if not sep:
                if len(data) >= _AUTHORIZE_MAX:
                    return False
                if len(data) == want:
                    want *= 2
                else:
                    time.sleep(0.002)  # the rest has not arrived yet
                continue
            length = -1
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and value.strip().isdigit():
                    length = int(value.strip())
            if length < 0 or len(head) + 4 + length > _AUTHORIZE_MAX:
                return False
            if len(body) < length:
                if len(data) == want:
                    want = len(head) + 4 + length
                else:
                    time.sleep(0.002)
                continue
            msg = json.loads(body[:length].decode("utf-8"))
            args = msg.get("arguments") if isinstance(msg, dict) else None
            presented = args.get("debugServerAccessToken") if isinstance(args, dict) else None
            return (
                msg.get("type") == "request"
                and msg.get("command") == "pydevdAuthorize"
                and isinstance(presented, str)
                and hmac.compare_digest(presented.encode("utf-8"), expected)
            )

    class _AuthorizingServerSocket(object):
        """pydevd's listening socket, returning from accept only connections that present the token."""

        def __init__(self, sock):
            self._sock = sock

        def __getattr__(self, name):
            return getattr(self._sock, name)

        def accept(self):
            while True:
                conn, addr = self._sock.accept()
                try:
                    ok = presents_token(conn)
                except Exception:
                    ok = False
                if ok:
                    conn.settimeout(None)
                    return conn, addr
                try:
                    conn.close()
                except OSError:
                    pass

    create_server_socket = pydevd.create_server_socket

    def authorizing_server_socket(host, port):
        return _AuthorizingServerSocket(create_server_socket(host=host, port=port))

    class _ConnectionAuthentication(object):
        __slots__ = ["access_token", "client_access_token", "_reader"]

        def __init__(self):
            self.access_token = token
            self.client_access_token = None
            self._reader = None

        def is_authenticated(self):
            return self._reader is not None and self._reader is threading.current_thread()

        def login(self, access_token):
            ok = isinstance(access_token, str) and hmac.compare_digest(access_token.encode("utf-8"), expected)
            self._reader = threading.current_thread() if ok else None

        def logout(self):
            self._reader = None

    pydevd.create_server_socket = authorizing_server_socket
    pydevd._Authentication = _ConnectionAuthentication


def _initialize(params):
    result = {
        "pid": os.getpid(),
        "version": "%d.%d.%d" % sys.version_info[:3],
        "executable": sys.executable,
        "debugPort": 0,
    }
    if params.get("debug"):
        try:
            import debugpy
        except ImportError as e:
            return None, (-32001, "debugpy is not importable: %s" % e)
        try:
            if params.get("inProcessAdapter", True):
                token = params.get("accessToken")
                if token:
                    _require_access_token(token)
                host, port = debugpy.listen(("127.0.0.1", 0), in_process_debug_adapter=True)
            else:
                host, port = debugpy.listen(("127.0.0.1", 0))
        except Exception as e:
            return None, (-32002, "debugpy.listen failed: %s" % e)
        result["debugPort"] = port
        result["debugpyVersion"] = getattr(debugpy, "__version__", "")
    # awslambdaric is started as `python -m awslambdaric <handler>`: the handler is argv[1].
    sys.argv[1:] = [params.get("handler") or ""]
    code_dir = params.get("codeDir") or os.getcwd()
    # Lambda's bootstrap is a shell script started in the code folder, so the runtime inherits its PWD.
    os.environ["PWD"] = os.path.abspath(code_dir)
    roots = _setup_sys_path(code_dir, params.get("layerDirs") or [])
    _loader.configure(params.get("handler") or "", code_dir, roots)
    return result, None


def _serve(reader, invocations, until_initialized):
    """Reads requests from the control pipe. Invocations go to the main thread's queue; initialize and shutdown
    are answered here. Returns after answering initialize when until_initialized, else at the pipe's end."""
    for line in reader:
        if line[:1].isdigit():
            # A small event, `<ref> <length>\n<bytes>` like a data-pipe frame, sent just ahead of the request that
            # names it (the data pipe's reader thread would cost a wake-up and a hand-over more).
            try:
                ref, size = line.split()
                size = int(size)
                data = reader.read(size)
            except ValueError as e:
                _diag("bad event frame: %s" % e)
                continue
            if len(data) != size:
                break
            _data_in.put(int(ref), data)
            continue
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError as e:
            _diag("bad request line: %s" % e)
            _wire.send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error: %s" % e}})
            continue
        method = msg.get("method")
        rpc_id = msg.get("id")
        params = msg.get("params") or {}
        if method == "invoke":
            invocations.put((rpc_id, params))
        elif method == "initialize":
            result, err = _initialize(params)
            if err is None:
                _wire.reply(rpc_id, result)
            else:
                _wire.reply_error(rpc_id, err[0], err[1])
            if until_initialized:
                return
        elif method == "shutdown":
            _wire.reply(rpc_id, None)
            os._exit(0)
        elif rpc_id is not None:
            _wire.reply_error(rpc_id, -32601, "method not found: %s" % method)
    os._exit(0)  # Go closed the pipe; a handler may still run, but nobody wants its answer


def main():
    global _wire, _data_in, _data_out
    _wire = _Wire(3, 4)
    _data_in = _DataIn(5)
    _data_out = _DataOut(6)
    threading.Thread(target=_data_in.run, name="plldb-data", daemon=True).start()
    _install_output_capture()
    reader = _wire.reader
    invocations = queue.SimpleQueue()
    # initialize (debugpy.listen among it) runs on the main thread, where handlers run: debugpy traces the thread
    # that starts it from then on.
    _serve(reader, invocations, True)
    threading.Thread(target=_serve, args=(reader, invocations, False), name="plldb-control", daemon=True).start()
    _run_invocations(invocations)


if __name__ == "__main__":
    main()
