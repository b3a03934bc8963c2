"""Commands that talk to a running daemon over its control socket."""


def register(sub):
    """Registered as the daemon's control protocol grows."""
