"""blockhub: hubs and gateways with signed presence, relayed handshakes and direct peer links.

The package is layered: a pure core (identity, wire format, records, policy), Automat
state machines above it, Twisted protocols and storage above those, and services that
wire everything together from options.  See docs/architecture.md.
"""

__version__ = "0.1.0"
