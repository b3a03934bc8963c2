"""What the two taps (``blockhub/gateway/tap.py``, ``blockhub/hub/tap.py``) share: the
data directory and the pid file kept in it, the manhole, ``--metrics``, the options
built from the limits declared in ``blockhub.limits``, and turning a ``UserError`` met
while making the service into one line, on stderr and in the log file.  It imports nothing heavy, so
``twistd ... --help`` is fast."""

import functools
import os
import time

from twisted.logger import LogLevel, textFileLogObserver
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


METRICS = [
    ["metrics", None, None,
     "Twisted endpoint serving GET /metrics for Prometheus (e.g. "
     "tcp:9100:interface=127.0.0.1); off unless given (docs/operations.md, Monitoring)"],
]
METRICS_FLAGS = [
    ["metrics-per-peer", None,
     "with --metrics, also series labelled with hub ids (ids are identities: off by "
     "default)"],
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
        if self.get("metrics-per-peer") and not self.get("metrics"):
            raise usage.UsageError("--metrics-per-peer needs --metrics ENDPOINT")
        self._default_pidfile()

    def _default_pidfile(self):
        """Keep each daemon's pid file in its own data directory, so several run side by
        side from one working directory (twistd's default is ./twistd.pid)."""
        parent = getattr(self, "parent", None)
        if parent is not None and parent.get("pidfile") == "twistd.pid":
            parent["pidfile"] = os.path.join(os.path.abspath(self["data-dir"]), "twistd.pid")


def log_file(options) -> str | None:
    """The file twistd will log to, from its own options (``options.parent``): the
    ``--logfile`` given, or ``twistd.log`` when it daemonizes without one; None for
    standard output or syslog."""
    twistd = getattr(options, "parent", None)
    if twistd is None or twistd.get("syslog"):
        return None
    name = twistd.get("logfile")
    if name == "-" or (not name and twistd.get("nodaemon")):
        return None
    return name or "twistd.log"


def log_startup_error(options, text: str) -> None:
    """Write ``text`` to the log file as twistd would write a critical event.  twistd
    opens its log only after ``makeService`` returns, so an error raised while making
    the service would otherwise reach stderr alone (gone, under a supervisor)."""
    path = log_file(options)
    if path is None:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            textFileLogObserver(f)({
                "log_format": "{text}", "text": text, "log_level": LogLevel.critical,
                "log_namespace": "blockhub.tap",
                "log_time": time.time()})
    except OSError:
        pass  # stderr still has it


def make_service(make, options, reactor=None):
    """``make(options, reactor)``, with a ``UserError`` ended as ``error: ...`` on one
    line (on stderr and in the log file) and a non-zero exit, as twistd does with a
    ``SystemExit``."""
    if reactor is None:
        from twisted.internet import reactor
    try:
        return make(options, reactor)
    except UserError as e:
        log_startup_error(options, f"error: {e}")
        raise SystemExit(f"error: {e}")
