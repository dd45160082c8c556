def handler(event, context):
    return {"where": "deployed", "event": event}
