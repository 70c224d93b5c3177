"""A sink worker that kill -9s itself right after a data PUT, before that flush's digest PUT.

Run as a script by test_faults.py (with the trail's SEALTRAIL_* environment):
the fault is injected at the sink's own store interface, the rest is the
product's SinkWorker on the real broker and S3 server.
"""

import os
import signal

from sealtrail.config import load_settings
from sealtrail.layout import DATA
from sealtrail.signing import signer_from_settings
from sealtrail.sinks.s3 import S3Store
from sealtrail.sinks.worker import SinkWorker


class DyingStore(S3Store):
    def put_locked(self, key, body, mode, retain_until):  # type: ignore[no-untyped-def]
        version = super().put_locked(key, body, mode, retain_until)
        if f"/{DATA}" in key:
            os.kill(os.getpid(), signal.SIGKILL)
        return version


if __name__ == "__main__":
    settings = load_settings()
    SinkWorker(settings, signer_from_settings(settings), store=DyingStore(settings)).run()
