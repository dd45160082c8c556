"""moto in server mode with DynamoDB's atomicity.

DynamoDB applies each request atomically: a conditional write's check and its write, and a whole transaction.
moto does not: it runs requests on threads with no lock, so two PutItems conditioned on attribute_not_exists can
both check, both pass and both write, and a transaction whose condition fails puts back a copy of the whole table
taken before it started, undoing what another request wrote meanwhile. Tests of plldb's claims rely on that
atomicity (of two concurrent claims exactly one wins), so this server runs DynamoDB requests one at a time and
every other service as moto_server does. Races between one request and the next stay as they are in DynamoDB.

Usage: python serve.py HOST PORT
"""

import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    moto_app = DomainDispatcherApplication(create_backend_app)
    moto_app.debug = True
    dynamodb = threading.Lock()

    def app(environ, start_response):
        # The JSON protocol names the operation in X-Amz-Target: DynamoDB_20120810.PutItem, and so on.
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with dynamodb:
                # The body is produced inside the lock: the whole request is one step.
                return list(moto_app(environ, start_response))
        return moto_app(environ, start_response)

    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
