"""Fails at import time, so the runtime reports an init error."""
raise ImportError("initfail: this module refuses to load")
