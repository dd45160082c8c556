"""A small stdlib-only Lambda runtime loop for tests, shaped like the managed Python runtime.

It imports the handler named by _HANDLER ("module.function") with LAMBDA_TASK_ROOT on sys.path, reports an
import failure to /runtime/init/error, then loops: GET /next, call handler(event, context), POST /response or
/error in Lambda's error format.

Test-only extensions on the context object: `raw_event` (the body bytes as received), `runtime_headers` (every
header of the /next answer), `response_headers` (a dict the handler may fill; sent with its response) and
`exit_after_response` (an exit code: the runtime exits right after posting the response). A handler returning
bytes has them posted unchanged instead of JSON-encoded.
"""

import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
PREFIX = "/2018-06-01/runtime"


class Context:
    def __init__(self, headers, raw_event):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0") or 0)
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        cc = headers.get("Lambda-Runtime-Client-Context")
        self.client_context = json.loads(cc) if cc else None
        ci = headers.get("Lambda-Runtime-Cognito-Identity")
        self.identity = json.loads(ci) if ci else None
        self.raw_event = raw_event
        self.runtime_headers = headers
        self.response_headers = {}
        self.exit_after_response = None

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


class RuntimeClient:
    def __init__(self, addr):
        host, _, port = addr.rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port))

    def request(self, method, path, body=None, headers=None):
        self.conn.request(method, PREFIX + path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data

    def next(self):
        status, headers, body = self.request("GET", "/invocation/next")
        if status != 200:
            raise RuntimeError("GET /next: %d %r" % (status, body))
        return headers, body

    def post(self, path, body, headers):
        status, _, answer = self.request("POST", path, body, headers)
        if status != 202:
            sys.stderr.write("bootstrap: POST %s: %d %r\n" % (path, status, answer))


def error_document(exc, error_type=None):
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def main():
    client = RuntimeClient(API)
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    sys.path.insert(0, task_root)
    module_name, _, func_name = os.environ.get("_HANDLER", "").rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
    except Exception as exc:  # the managed runtime reports any import failure the same way
        doc = error_document(exc, "Runtime.ImportModuleError")
        doc["errorMessage"] = "Unable to import module '%s': %s" % (module_name, exc)
        client.post("/init/error", json.dumps(doc).encode(), {
            "Content-Type": "application/vnd.aws.lambda.error+json",
            "Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError",
        })
        sys.exit(1)

    while True:
        headers, raw = client.next()
        request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("Lambda-Runtime-Trace-Id", "")
        ctx = Context(headers, raw)
        try:
            event = json.loads(raw) if raw else None
            result = handler(event, ctx)
        except Exception as exc:
            client.post("/invocation/%s/error" % request_id, json.dumps(error_document(exc)).encode(), {
                "Content-Type": "application/vnd.aws.lambda.error+json",
                "Lambda-Runtime-Function-Error-Type": "Unhandled",
            })
            continue
        body = result if isinstance(result, bytes) else json.dumps(result).encode()
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(ctx.response_headers)
        client.post("/invocation/%s/response" % request_id, body, hdrs)
        if ctx.exit_after_response is not None:
            sys.exit(ctx.exit_after_response)


if __name__ == "__main__":
    main()
