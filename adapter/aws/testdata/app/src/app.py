import os


def handler(event, context):
    where = "local"  # BREAKPOINT
    return {"where": where, "function": context.function_name, "event": event, "stage": os.environ.get("STAGE")}
