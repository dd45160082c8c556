"""The CDK app's handler (an asset folder as cdk synth stages it)."""

import os

import util


def handler(event, context):
    region = os.environ.get("REGION")  # BREAKPOINT
    return {"region": region, "doubled": util.double(event.get("n", 0))}
