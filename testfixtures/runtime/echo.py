"""Returns what the runtime received: the raw event (base64), every /next header and a few context fields."""
import base64
import os


def handler(event, context):
    context.response_headers["X-Echo"] = "yes"
    return {
        "raw": base64.b64encode(context.raw_event).decode(),
        "headers": context.runtime_headers,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in (event or {}).get("env", [])} if isinstance(event, dict) else {},
    }
