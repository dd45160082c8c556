print("initerror: importing")
raise RuntimeError("init failed: \u00fcnic\u00f8de \u2713")


def handler(event, context):
    return "never"
