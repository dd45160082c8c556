"""Checks executor.py's result encoder against awslambdaric's own marshaller, value by value: the same body and
content type, or the same Runtime.MarshalError message. Run with the executor's path; AWS_EXECUTION_ENV picks
the runtime (ensure_ascii). Prints one JSON object: {"checked": n, "diffs": [...]}."""

import collections
import datetime
import decimal
import enum
import importlib.util
import json
import math
import sys
import uuid

from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

spec = importlib.util.spec_from_file_location("plldb_executor", sys.argv[1])
executor = importlib.util.module_from_spec(spec)
spec.loader.exec_module(executor)

P = collections.namedtuple("P", "x y")


class IE(enum.IntEnum):
    A = 7


class SE(str, enum.Enum):
    A = "sv"


class F(float):
    pass


class S(str):
    pass


class D(dict):
    pass


class L(list):
    pass


class AsDict:
    def _asdict(self):
        return {"ad": 1}


class BadAsDict:
    def _asdict(self):
        return [1]


class RaisingAsDict:
    def _asdict(self, required):
        return {}


loop = []
loop.append(loop)
shared = {"s": 1}

VALUES = [
    None, True, False, 0, -1, 1, 10 ** 30, -0.0, 1.5, 3.0, 1e300, 1e-7, 123456789.123456789, math.nan, math.inf, -math.inf,
    "", "s", "\u00fc\u2713\u2028\u2029\x00\x1f\x7f\"\\/\ud83d\ude80", "\ud800", S("sub"), SE.A, IE.A, F(2.5),
    {}, [], (), {"": ""}, {"a": [1, 2, {"b": None}]}, [1, "x", 2.5], (1, (2, 3)), L([1]), D(x=1),
    collections.OrderedDict(a=1), collections.defaultdict(list, b=[2]), [shared, shared],
    P(1, [P(2, 3)]), {"p": P(1, 2)}, [P(1, 2)], AsDict(), [AsDict()], {"x": AsDict()}, BadAsDict(), [RaisingAsDict()],
    decimal.Decimal("1.10"), decimal.Decimal("NaN"), decimal.Decimal("sNaN"), decimal.Decimal("-Infinity"),
    decimal.Decimal("1E+3"), {"d": [decimal.Decimal("-0.000")]}, {"k": P(decimal.Decimal("2.0"), math.nan)},
    {1: "i", 2.5: "f", True: "t", None: "n"}, {False: 1, math.nan: 2, math.inf: 3}, {IE.A: IE.A}, {"s": SE.A},
    b"bytes", b"", bytearray(b"ba"), {"b": b"bytes \xc3\xbc"}, [b"\xff"], {b"k": 1},
    datetime.datetime(2020, 1, 1), datetime.date(2020, 1, 1), uuid.UUID(int=1), {1, 2}, frozenset(), {"s": {1}},
    {(1,): 2}, {decimal.Decimal(1): 2}, loop, 10 ** 5000, object(), complex(1, 2), range(3), iter([1]),
    [1, [2, [3, {"z": (4, 5)}]]], {"n": [math.nan, {"i": -math.inf}]},
]


def reference(value):
    try:
        body, ctype = LambdaMarshaller().marshal_response(value)
    except Exception as e:
        return ["error", getattr(e, "msg", str(e))]
    if not isinstance(body, bytes):
        body = body.encode("utf-8", "backslashreplace")  # awslambdaric cannot post lone surrogates at all
    return ["ok", body.decode("latin-1"), ctype]


def ours(value):
    try:
        body, ctype, _ = executor._marshal(value)
    except Exception as e:
        return ["error", "Unable to marshal response: " + str(e)]
    return ["ok", body.decode("latin-1"), ctype]


diffs = []
for v in VALUES:
    want, got = reference(v), ours(v)
    if want != got:
        diffs.append({"value": repr(v)[:80], "awslambdaric": want, "executor": got})
print(json.dumps({"checked": len(VALUES), "diffs": diffs}))
