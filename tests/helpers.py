"""Shared test helpers: temporary data directories and key rings, never the real home."""

import io
import os
from pathlib import Path

from blockhub import keystore
from blockhub.cli import main


def isolate_keyring(case) -> Path:
    """Point $BLOCKHUB_KEYRING at a fresh temporary directory for this test."""
    ring = Path(case.mktemp())
    old = os.environ.get(keystore.KEYRING_ENV)
    os.environ[keystore.KEYRING_ENV] = str(ring)

    def restore():
        if old is None:
            os.environ.pop(keystore.KEYRING_ENV, None)
        else:
            os.environ[keystore.KEYRING_ENV] = old

    case.addCleanup(restore)
    return ring


def run_cli(*argv, stdin=""):
    """Run the CLI in-process; return (exit code, stdout text, stderr text)."""
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


class NoCircuits:
    """For a Peers built alone: a hub whose gateway carries no circuits."""

    def listen(self, peer):
        pass

    def unlisten(self, peer):
        pass
