"""plldb executor: runs one AWS Lambda function's Python handler for the plldb debug adapter.

The Go side (package adapter/executor) starts this file with two extra pipes: fd 3 carries requests from Go and
fd 4 carries responses and notifications back, both newline-delimited JSON-RPC 2.0. Events are not inside
requests but in raw frames of their own (small ones on fd 3 just ahead of their request, big ones on fd 5; big
payloads go back on fd 6), so that each invocation decodes its own event (see _invoke). stdin, stdout and stderr are
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

    def whole(self, rid, stream, text):
        """Sends text that is already whole lines (logging records, error reports)."""
        _wire.notify("log", {"requestId": rid, "stream": stream, "text": text})

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


class _StdProxy(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr: routes writes by the writing thread's request id."""

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


class _LambdaLogFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _current_rid() or ""
        return True


class _LambdaLogHandler(logging.Handler):
    """Formats like the Lambda Python runtime's root handler and sends the record to its request's log."""

    def emit(self, record):
        try:
            msg = self.format(record)
        except Exception:
            self.handleError(record)
            return
        rid = _current_rid()
        if rid is None:
            _REAL_STDERR.write(msg)
            _REAL_STDERR.flush()
        else:
            _router.whole(rid, "stdout", msg)


def _install_output_capture():
    threading.Thread.__init__ = _thread_init
    sys.stdout = _StdProxy("stdout", _REAL_STDOUT)
    sys.stderr = _StdProxy("stderr", _REAL_STDERR)
    fmt = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
    )
    fmt.converter = time.gmtime
    handler = _LambdaLogHandler()
    handler.setFormatter(fmt)
    handler.addFilter(_LambdaLogFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40, "FATAL": 50}
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in levels:
        root.setLevel(levels[level])


# ---------------------------------------------------------------------------------------------------------------
# The context object, as the Lambda Python runtime (awslambdaric) builds it.


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]


class ClientContext:
    __slots__ = ["custom", "env", "client"]


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field))
    return obj


class LambdaContext:
    def __init__(self, invoke_id, client_context, cognito_identity, epoch_deadline_time_in_ms, invoked_function_arn):
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = None
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

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id={},log_group_name={},log_stream_name={},function_name={},"
            "memory_limit_in_mb={},function_version={},invoked_function_arn={},client_context={},identity={}])"
        ).format(
            self.aws_request_id,
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
            self.invoked_function_arn,
            self.client_context,
            self.identity,
        )


# ---------------------------------------------------------------------------------------------------------------
# Errors, formatted as the Lambda Python runtime reports them.


def _error(message, error_type, stack=None, rid=None):
    err = {"errorMessage": message, "errorType": error_type, "stackTrace": stack if stack is not None else []}
    if rid:
        err["requestId"] = rid
    return err


def _stack_from(tb):
    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if frame.filename != _HERE:  # the executor's own frames are the runtime's, not the user's
            return traceback.format_list(frames[i:])
    return []


def _exception_error(exc, rid):
    return _error(str(exc), type(exc).__name__, _stack_from(exc.__traceback__), rid)


def _log_error(rid, err):
    desc = "[ERROR] " + err["errorType"] + ": " + err["errorMessage"] if err.get("errorMessage") else "[ERROR] " + err["errorType"]
    lines = [desc]
    stack = err.get("stackTrace")
    if stack:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            lines.extend(element.splitlines() or [""])
    _router.whole(rid, "stdout", "\n".join(lines) + "\n")


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
                self.handler = self._import()
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
# Invocations.


def _json_default(obj):
    if isinstance(obj, decimal.Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def _marshal(value):
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=_json_default).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, allow_nan=False, default=_json_default).encode("ascii")


def _context_json(text, name):
    """A context header's JSON text, decoded here rather than in the request line for the event's reason (see
    _invoke), and failing as awslambdaric's parse_json_header does."""
    if not text:
        return None
    try:
        return json.loads(text)
    except Exception as e:
        raise _Fault("Runtime.LambdaContextUnmarshalError", "Unable to parse {} JSON: {}".format(name, str(e))) from None


def _invoke(rpc_id, params):
    arrived = _perf_ns()
    rid = params.get("requestId") or ""
    me = threading.current_thread()
    me._plldb_rid = rid
    # Thread names are the debug adapter's thread model (adapter/dap/threads.go): it shows "plldb-invoke <rid>"
    # as "<function> <request id>", and hides the executor's own threads (MainThread and every other "plldb-"
    # name: plldb-data, plldb-idle), which never run handler code.
    me.name = "plldb-invoke " + rid
    scan_ns = 0
    payload = None
    err = None
    try:
        trace_id = params.get("traceId")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            handler, scan_ns = _loader.get(arrived)
            ctx = LambdaContext(
                rid,
                _context_json(params.get("clientContext"), "Client Context"),
                _context_json(params.get("cognitoIdentity"), "Cognito Identity"),
                int(params.get("deadlineMs") or 0),
                params.get("invokedFunctionArn"),
            )
            ref = params.get("eventRef")
            raw = _data_in.take(ref) if ref else None
            if raw is None:
                raise RuntimeError("event body %s never arrived" % ref)
            # The event comes as raw bytes in a frame of its own, never inside the request line, so that it is
            # decoded here, where a failure is this invocation's alone. Go's check lets through JSON that json
            # cannot decode (invalid UTF-8, nesting past the recursion limit, integers past
            # int_max_str_digits); answer those as awslambdaric's unmarshal_request does (Exception, which
            # covers RecursionError and UnicodeDecodeError): Runtime.UnmarshalError, no stack trace.
            try:
                event = json.loads(raw)
            except Exception as e:
                raise _Fault("Runtime.UnmarshalError", "Unable to unmarshal input: {}".format(str(e))) from None
            result = handler(event, ctx)
            try:
                payload = _marshal(result)
            except (TypeError, ValueError, OverflowError, RecursionError) as e:
                err = _error("Unable to marshal response: {}".format(str(e)), "Runtime.MarshalError", None, rid)
        except _Fault as f:
            err = dict(f.error, requestId=rid)
        except SystemExit as e:
            # Lambda's runtime process ends here and the sandbox is reset; do the same, Go reports the exit.
            _router.flush(rid)
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            os._exit(code)
        except BaseException as e:  # noqa: B036 - every failure must become an answer, never a silent thread end
            err = _exception_error(e, rid)
        if err is not None:
            _log_error(rid, err)
    finally:
        _router.flush(rid)
        me._plldb_rid = None
        me.name = "plldb-idle"
    if err is None and len(payload) > _INLINE_MAX and params.get("ref"):
        _data_out.send(params["ref"], payload)
        _wire.reply(rpc_id, {"payloadRef": params["ref"], "scanNs": scan_ns})
    elif err is None:
        head = b'{"jsonrpc":"2.0","id":' + _dumps(rpc_id) + b',"result":{"payload":'
        _wire.send_raw(head + payload + b',"scanNs":' + str(scan_ns).encode() + b"}}\n")
    else:
        _wire.reply(rpc_id, {"error": err, "scanNs": scan_ns})


class _Pool:
    """One thread per concurrent invocation; threads are kept and reused once idle (creating one costs more
    than the rest of a trivial invocation)."""

    def __init__(self):
        self._q = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn, *args):
        with self._lock:
            reuse = self._idle > 0
            if reuse:
                self._idle -= 1
        if reuse:
            self._q.put((fn, args))
        else:
            threading.Thread(target=self._work, args=((fn, args),), name="plldb-idle", daemon=True).start()

    def _work(self, task):
        while True:
            fn, args = task
            try:
                fn(*args)
            except BaseException as e:  # noqa: B036
                _diag("invocation thread failed: %r" % (e,))
            with self._lock:
                self._idle += 1
            task = self._q.get()


_pool = _Pool()

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
    code_dir = params.get("codeDir") or os.getcwd()
    roots = _setup_sys_path(code_dir, params.get("layerDirs") or [])
    _loader.configure(params.get("handler") or "", code_dir, roots)
    return result, None


def main():
    global _wire, _data_in, _data_out
    _wire = _Wire(3, 4)
    _data_in = _DataIn(5)
    _data_out = _DataOut(6)
    threading.Thread(target=_data_in.run, name="plldb-data", daemon=True).start()
    _install_output_capture()
    reader = _wire.reader
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
            _pool.submit(_invoke, rpc_id, params)
        elif method == "initialize":
            result, err = _initialize(params)
            if err is None:
                _wire.reply(rpc_id, result)
            else:
                _wire.reply_error(rpc_id, err[0], err[1])
        elif method == "shutdown":
            _wire.reply(rpc_id, None)
            os._exit(0)
        elif rpc_id is not None:
            _wire.reply_error(rpc_id, -32601, "method not found: %s" % method)
    os._exit(0)  # Go closed the pipe; handler threads may still run, but nobody wants their answers


if __name__ == "__main__":
    main()
