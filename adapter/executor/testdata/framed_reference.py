"""Runs one invocation of a handler through awslambdaric's own bootstrap.run, with Lambda's telemetry pipe:
the test passes the pipe as fd 3 and names it in _LAMBDA_TELEMETRY_LOG_FD, so awslambdaric's
FramedTelemetryLogSink writes every logging record and the [ERROR] report there, as in Lambda, while print()
output goes to stdout.

Usage: framed_reference.py MODULE.FUNCTION CODE_DIR REQUEST_ID
"""

import sys
import time

from awslambdaric import bootstrap
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

handler, code_dir, request_id = sys.argv[1:4]
sys.path.insert(0, code_dir)


class _Request:
    invoke_id = request_id
    tenant_id = None
    x_amzn_trace_id = None
    event_body = b"{}"
    content_type = "application/json"
    client_context = None
    cognito_identity = None
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:Fn"
    deadline_time_in_ms = int(time.time() * 1000) + 60000
    invocation_id = None


class _Client:
    """The Runtime API client bootstrap.run drives: one invocation, then the loop ends."""

    marshaller = LambdaMarshaller()

    def __init__(self):
        self.served = False

    def wait_next_invocation(self):
        if self.served:
            raise SystemExit(0)
        self.served = True
        return _Request()

    def post_invocation_result(self, *args):
        pass

    def post_invocation_error(self, *args):
        pass

    def post_init_error(self, *args):
        pass


bootstrap.run(handler, _Client())
