print("parity_initerror: importing")


def helper():
    raise RuntimeError("init failed")


helper()


def handler(event, context):
    return "never"
