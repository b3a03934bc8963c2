"""Every limit that protects a gateway or a hub from a hostile or broken peer, in one
place.  Each is declared once, as a field of ``Limits``: its default, and beside it the
twistd option that sets it, which daemons take it, the option's help text and the row
of docs/security.md's limits table that lists it.  The taps build their options from
these declarations (``LIMITS``); tests/test_options.py checks the table against them.
Services build one ``Limits`` from their options and hand it to the objects that
enforce it."""

from collections.abc import Mapping
from typing import Any, cast

import attrs

from blockhub.wire.framing import DEFAULT_MAX_FRAME

GATEWAY = "gateway"
HUB = "hub"
BOTH = (GATEWAY, HUB)


@attrs.frozen
class Limit:
    """One limit as the operator meets it: a ``Limits`` field, a twistd option of each
    daemon in ``help`` (pairs of daemon and help text), a row of docs/security.md."""

    field: str
    kind: type                         # int or float: what the option's text becomes
    default: int | float
    option: str                        # the twistd option, without its dashes
    help: tuple[tuple[str, str], ...]
    row: str                           # the "limit" cell of its row in docs/security.md
    unit: str = ""                     # how that row writes the default (see in_table)
    positive: bool = False             # 0 or less is a usage error
    shown: bool = False                # the option defaults to ``default`` and --help says so

    @property
    def daemons(self) -> tuple[str, ...]:
        return tuple(daemon for daemon, _ in self.help)

    def help_for(self, daemon: str) -> str:
        return dict(self.help)[daemon]

    def in_table(self) -> str:
        """The default as the table's default cell starts: "10 s", "burst 5"."""
        whole = self.default == int(self.default)
        number = str(int(self.default)) if whole else f"{self.default:g}"
        if self.unit == "burst":
            return f"burst {number}"
        return f"{number} {self.unit}" if self.unit else number


_DECLARED = "blockhub.limit"  # the attrs metadata key of a field's declaration


def _limit(default: int | float, option: str, help: str | dict[str, str], row: str, *,
           daemons: tuple[str, ...] = BOTH, **more: Any) -> Any:
    """A ``Limits`` field: ``help`` is one text, or a text per daemon."""
    texts = tuple((d, help[d] if isinstance(help, dict) else help) for d in daemons)
    return attrs.field(default=default, metadata={
        _DECLARED: dict(option=option, help=texts, row=row, **more)})


_G = {"daemons": (GATEWAY,)}
_H = {"daemons": (HUB,)}


@attrs.frozen
class Limits:
    # every connection
    max_frame: int = _limit(
        DEFAULT_MAX_FRAME, "max-frame", "largest frame accepted, in bytes",
        "frame size, checked before buffering", unit="bytes")
    tls_timeout: float = _limit(
        10.0, "tls-timeout", "seconds a connection may take to finish TLS",
        "TLS handshake time", unit="s")
    idle_timeout: float = _limit(
        60.0, "idle-timeout",
        {GATEWAY: "drop a hub silent for this many seconds",
         HUB: "drop a peer or gateway silent this long (seconds)"},
        "silence", unit="s", positive=True, shown=True)
    max_send_queue: int = _limit(
        4 * 1024 * 1024, "max-send-queue",
        "bytes queued for a peer that stops reading before it is dropped",
        "bytes waiting to be sent to a peer that does not read", unit="bytes")
    close_timeout: float = _limit(
        10.0, "close-timeout",
        "seconds a closing connection may take to drain before it is aborted",
        "a graceful close that cannot drain", unit="s")
    # the gateway
    join_timeout: float = _limit(
        10.0, "join-timeout", "seconds from TLS to a valid join",
        "time from TLS to a valid join", unit="s", **_G)
    unauthenticated_per_ip: int = _limit(
        32, "max-unauthenticated-per-ip", "connections one address may hold before joining",
        "unauthenticated connections per source address", **_G)
    max_hubs: int = _limit(20000, "max-hubs", "admitted hubs", "admitted hubs", **_G)
    hubs_per_ip: int = _limit(
        0, "max-hubs-per-ip", "admitted hubs from one address, allow-listed keys exempt "
        "(0: no cap)", "admitted hubs per source address", **_G)
    relay_per_minute: int = _limit(
        30, "relay-per-minute", "relayed requests per hub per minute",
        "relayed requests per sender", unit="/ min", **_G)
    relay_burst: int = _limit(
        10, "relay-burst", "relayed requests a hub may send at once",
        "relayed requests per sender", unit="burst", **_G)
    updates_per_minute: int = _limit(
        12, "updates-per-minute", "HubInfo updates per hub per minute",
        "joins and HubInfo updates per hub, remembered across leaves", unit="/ min", **_G)
    updates_burst: int = _limit(
        5, "updates-burst", "HubInfo updates a hub may send at once",
        "joins and HubInfo updates per hub, remembered across leaves", unit="burst", **_G)
    # the gateway's relay circuits (docs/circuits.md)
    max_circuits_per_hub: int = _limit(
        8, "max-circuits-per-hub", "relay circuits a hub may have open or asked for "
        "(0: the gateway carries none)", "relay circuits per hub, open or asked for", **_G)
    circuit_rate: int = _limit(
        1048576, "circuit-rate", "bytes per second each relay circuit carries each way",
        "bytes per second per relay circuit, each way", unit="bytes / s", positive=True,
        **_G)
    circuit_burst: int = _limit(
        262144, "circuit-burst", "bytes a relay circuit may carry at once above its rate",
        "bytes per second per relay circuit, each way", unit="burst", **_G)
    circuit_bandwidth: int = _limit(
        20971520, "circuit-bandwidth", "bytes per second over all relay circuits",
        "bytes per second over all relay circuits", unit="bytes / s", positive=True, **_G)
    circuit_idle_timeout: float = _limit(
        300.0, "circuit-idle-timeout", "seconds a relay circuit may carry no data",
        "relay circuit carrying no data", unit="s", positive=True, **_G)
    circuit_pending_timeout: float = _limit(
        30.0, "circuit-pending-timeout",
        "seconds a circuit request waits for the other hub's",
        "circuit request waiting for the other hub's", unit="s", positive=True, **_G)
    # the hub
    max_pending: int = _limit(
        100, "max-pending", "incoming requests waiting for the operator",
        "pending incoming requests", **_H)
    max_inflight: int = _limit(
        256, "max-inflight", "unacknowledged messages on the wire per peer",
        "messages in flight per peer", **_H)
    first_frame_timeout: float = _limit(
        10.0, "first-frame-timeout", "seconds from TLS to a peer's opening frame",
        "time from TLS to a peer's opening frame (peer-hello / peer-request; peer-ready "
        "for a dialer)", unit="s", **_H)
    unopened_per_ip: int = _limit(
        8, "max-unopened-per-ip", "peer connections one address may hold before opening",
        "peer connections not yet opened, per source address", **_H)
    max_unopened: int = _limit(
        64, "max-unopened", "peer connections not yet opened, in total",
        "peer connections not yet opened, in total", **_H)


DEFAULT = Limits()

LIMITS: tuple[Limit, ...] = tuple(
    Limit(field=a.name, kind=type(a.default), default=cast(int | float, a.default),
          **a.metadata[_DECLARED])
    for a in attrs.fields(Limits))

# twistd option name -> Limits field, for both services (each takes the ones it has).
OPTIONS = {limit.option: limit.field for limit in LIMITS}


def limits_from_options(options: Mapping[str, Any]) -> Limits:
    """A ``Limits`` with every option the user gave, defaults for the rest."""
    given: dict[str, Any] = {}
    for limit in LIMITS:
        if limit.option in options and options[limit.option] is not None:
            given[limit.field] = limit.kind(options[limit.option])
    return attrs.evolve(DEFAULT, **given)
