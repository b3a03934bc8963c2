"""What the two taps (``blockhub/gateway/tap.py``, ``blockhub/hub/tap.py``) share: the
data directory and the pid file kept in it, the manhole, the options built from the
limits declared in ``blockhub.limits``, and turning a ``UserError`` met while making
the service into one line.  It imports nothing heavy, so ``twistd ... --help`` is fast."""

import functools
import os

from twisted.python import usage

from blockhub.errors import UserError
from blockhub.limits import LIMITS, Limit


def positive(value, kind=float):
    number = kind(value)
    if number <= 0:
        raise ValueError("must be greater than zero")
    return number


def data_dir(whose: str) -> list:
    return ["data-dir", "d", None, f"{whose} data directory (from: blockhub init)"]


MANHOLE = [
    ["manhole", None, None,
     "Twisted endpoint for an SSH manhole (e.g. tcp:2222:interface=127.0.0.1); off unless given"],
    ["manhole-keys", None, None,
     "OpenSSH authorized_keys file of the keys allowed into the manhole"],
]


def _limit_parameter(limit: Limit, daemon: str) -> list:
    # A limit whose default is not shown defaults to None, "keep the default", and its
    # help points to the table that lists the defaults.
    help_text = limit.help_for(daemon)
    if not limit.shown:
        help_text += " (default: see docs/security.md)"
    return [limit.option, None, limit.default if limit.shown else None, help_text,
            functools.partial(positive, kind=limit.kind) if limit.positive else limit.kind]


def limit_parameters(daemon: str) -> list:
    """The options of every limit ``daemon`` takes, as ``optParameters`` rows."""
    return [_limit_parameter(limit, daemon) for limit in LIMITS if daemon in limit.daemons]


class DaemonOptions(usage.Options):
    """The checks both daemons make once their options are parsed."""

    def postOptions(self):
        if not self["data-dir"]:
            raise usage.UsageError("--data-dir is required")
        if self["manhole"] and not self["manhole-keys"]:
            raise usage.UsageError("--manhole needs --manhole-keys FILE (public keys only)")
        self._default_pidfile()

    def _default_pidfile(self):
        """Keep each daemon's pid file in its own data directory, so several run side by
        side from one working directory (twistd's default is ./twistd.pid)."""
        parent = getattr(self, "parent", None)
        if parent is not None and parent.get("pidfile") == "twistd.pid":
            parent["pidfile"] = os.path.join(os.path.abspath(self["data-dir"]), "twistd.pid")


def make_service(make, options, reactor=None):
    """``make(options, reactor)``, with a ``UserError`` ended as ``error: ...`` on one
    line and a non-zero exit, as twistd does with a ``SystemExit``."""
    if reactor is None:
        from twisted.internet import reactor
    try:
        return make(options, reactor)
    except UserError as e:
        raise SystemExit(f"error: {e}")
