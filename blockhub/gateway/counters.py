"""What the gateway counts: admissions, refusals by kind, relays, relay circuits and
aborted connections.  One instance per gateway, handed to every object that counts, and shown
as ``counters`` in its status."""

import attrs


@attrs.define
class Counters:
    joined: int = 0
    left: int = 0
    replaced: int = 0
    refused: int = 0
    refused_key: int = 0            # not on the allow list (a part of ``refused``)
    refused_proof: int = 0          # a missing or wrong network-key proof (likewise)
    join_timeouts: int = 0          # no join within --join-timeout (likewise)
    refused_full: int = 0
    refused_unauthenticated: int = 0
    tls_timeouts: int = 0
    protocol_errors: int = 0
    updates: int = 0
    updates_refused: int = 0
    relayed: int = 0
    relay_refused: int = 0
    relay_cluster_limited: int = 0  # senders over their cluster-wide budget (drained here)
    relay_dropped: int = 0          # a rejection for a hub that did not list rejection/1
    joins_refused: int = 0          # over the per-key budget of joins and updates
    refused_per_address: int = 0    # over --max-hubs-per-ip
    refused_banned: int = 0         # banned by the operator (blockhub kick --ban)
    refused_old_key: int = 0        # asked for the key we succeeded (after a rotation)
    send_queue_full: int = 0        # aborted: did not read, over --max-send-queue
    close_timeouts: int = 0         # aborted: a close did not drain in --close-timeout
    circuits_opened: int = 0        # relay circuits joined
    circuits_refused: int = 0       # circuit-refused sent (off, offline, limit, expired)
    circuits_replaced: int = 0      # closed "replaced" by a newer one of the same pair
    circuits_idle: int = 0          # closed for carrying no data (--circuit-idle-timeout)
    circuit_violations: int = 0     # closed for data beyond credit or credit beyond data
    circuit_unknown: int = 0        # data or credit dropped: not a circuit of the sender's
    circuit_credit_delayed: int = 0  # credit held back for a circuit's rate or the total
