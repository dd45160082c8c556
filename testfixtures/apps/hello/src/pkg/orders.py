"""A handler inside a package; it uses the shared layer and reads its environment."""

import os

import shared_util


def handler(event, context):
    items = event.get("items", [])  # BREAKPOINT
    return {
        "table": os.environ.get("TABLE_NAME"),
        "shared": os.environ.get("SHARED"),
        "stage": os.environ.get("APP_STAGE"),
        "count": shared_util.count_items(items),
    }
