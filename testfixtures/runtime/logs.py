"""Prints event["lines"] to stdout, then answers."""


def handler(event, context):
    for line in event.get("lines", []):
        print(line, flush=True)
    return {"printed": len(event.get("lines", []))}
