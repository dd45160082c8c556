"""Raises, so the runtime posts an error document."""


def handler(event, context):
    raise ValueError("boom: %s" % (event or {}).get("why", "no reason"))
