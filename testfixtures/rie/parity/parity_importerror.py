import plldb_no_such_module_parity  # noqa: F401


def handler(event, context):
    return "never"
