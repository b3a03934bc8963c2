"""The hub: its gateway link, the online list, handshakes and the peer channel."""
