"""Answers, then has the runtime exit with code 3 right after posting the response."""


def handler(event, context):
    context.exit_after_response = 3
    return {"answered": True}
