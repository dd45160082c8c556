"""The smallest handler: returns its event. For measuring what sits around it."""


def handler(event, context):
    return event
