"""Twisted transport pieces shared by the gateway and the hub: key-pinned TLS and the
framed protocol base."""
