"""Every limit that protects a gateway or a hub from a hostile or broken peer, in one
place, with its default.  Services build one ``Limits`` from their options and hand it
to the objects that enforce it; docs/security.md lists them."""

import attrs

from blockhub.wire.framing import DEFAULT_MAX_FRAME


@attrs.frozen
class Limits:
    # every connection
    max_frame: int = DEFAULT_MAX_FRAME      # bytes; checked before a body is buffered
    tls_timeout: float = 10.0               # seconds to complete the TLS handshake
    idle_timeout: float = 60.0              # seconds of silence before a peer is dropped
    max_send_queue: int = 4 * 1024 * 1024   # bytes queued for a peer that does not read
    close_timeout: float = 10.0             # seconds a graceful close may wait to drain
    # the gateway
    join_timeout: float = 10.0              # seconds from TLS to a valid join
    unauthenticated_per_ip: int = 32        # connections from one address not yet admitted
    max_hubs: int = 20000                   # admitted hubs
    hubs_per_ip: int = 0                    # admitted hubs from one address (0: no cap)
    relay_per_minute: int = 30              # relayed requests per sender, steady rate
    relay_burst: int = 10                   # ... and burst
    updates_per_minute: int = 12            # HubInfo updates per hub, steady rate
    updates_burst: int = 5                  # ... and burst
    # the hub
    max_pending: int = 100                  # incoming requests waiting for the operator
    max_inflight: int = 256                 # unacknowledged messages on the wire per peer
    first_frame_timeout: float = 10.0       # seconds from TLS to peer-hello / peer-request
    unopened_per_ip: int = 8                # peer connections from one address not yet open
    max_unopened: int = 64                  # peer connections not yet open, in total


DEFAULT = Limits()


# twistd option name -> Limits field, for both services (each takes the ones it has).
OPTIONS = {
    "max-frame": "max_frame", "tls-timeout": "tls_timeout", "idle-timeout": "idle_timeout",
    "max-send-queue": "max_send_queue", "close-timeout": "close_timeout",
    "max-hubs-per-ip": "hubs_per_ip",
    "first-frame-timeout": "first_frame_timeout", "max-unopened-per-ip": "unopened_per_ip",
    "max-unopened": "max_unopened",
    "join-timeout": "join_timeout",
    "max-unauthenticated-per-ip": "unauthenticated_per_ip", "max-hubs": "max_hubs",
    "relay-per-minute": "relay_per_minute", "relay-burst": "relay_burst",
    "updates-per-minute": "updates_per_minute", "updates-burst": "updates_burst",
    "max-pending": "max_pending", "max-inflight": "max_inflight",
}


def limits_from_options(options) -> Limits:
    """A ``Limits`` with every option the user gave, defaults for the rest."""
    given = {}
    for option, field in OPTIONS.items():
        if option in options and options[option] is not None:
            kind = type(getattr(DEFAULT, field))
            given[field] = kind(options[option])
    return attrs.evolve(DEFAULT, **given)
