"""Handlers of the hello app: a plain module handler and one that fails."""

import json
import os


def handler(event, context):
    greeting = "hello from " + os.environ.get("APP_STAGE", "nowhere")  # BREAKPOINT
    return {"statusCode": 200, "body": json.dumps({"greeting": greeting, "event": event})}


def fail(event, context):
    raise ValueError("boom")  # BREAKPOINT
