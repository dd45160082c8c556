import plldb_no_such_module_xyz  # noqa: F401


def handler(event, context):
    return "never"
