"""What the gateway counts: admissions, refusals by kind, relays and aborted
connections.  One instance per gateway, handed to every object that counts, and shown
as ``counters`` in its status."""

import attrs


@attrs.define
class Counters:
    joined: int = 0
    left: int = 0
    replaced: int = 0
    refused: int = 0
    refused_full: int = 0
    refused_unauthenticated: int = 0
    tls_timeouts: int = 0
    protocol_errors: int = 0
    updates: int = 0
    updates_refused: int = 0
    relayed: int = 0
    relay_refused: int = 0
    relay_dropped: int = 0          # a rejection for a hub that did not list rejection/1
    joins_refused: int = 0          # over the per-key budget of joins and updates
    refused_per_address: int = 0    # over --max-hubs-per-ip
    send_queue_full: int = 0        # aborted: did not read, over --max-send-queue
    close_timeouts: int = 0         # aborted: a close did not drain in --close-timeout
