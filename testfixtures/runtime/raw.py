"""Returns the bytes given in event["b64"] exactly, to check that response bytes pass unchanged."""
import base64


def handler(event, context):
    return base64.b64decode(event["b64"])
