"""The end-to-end flow control of one direction of a relay circuit (docs/circuits.md),
as the gateway that carries it keeps count.

A sender may have at most ``WINDOW`` payload bytes out that its receiver has not
credited back.  The gateway forwards data at once and holds nothing but counts: what
the sender may still send, what the receiver has not credited yet, and what the
receiver credited that the gateway has not passed on to the sender yet (it waits while
the sender is over its rate).  The three always add up to the window, so a sender that
keeps to its credit never makes the gateway hold more than one window for it.  Data
beyond the credit, or credit beyond what was sent, is a violation.  Pure: no clock.
"""

WINDOW = 1024 * 1024  # bytes each direction of a circuit starts with


class Flow:
    def __init__(self, window: int = WINDOW):
        self.window = window
        self.allowed = window  # the sender may send this much more
        self.unacked = 0       # forwarded to the receiver, not credited by it yet
        self.held = 0          # credited by the receiver, not passed on to the sender yet
        self.carried = 0       # payload bytes forwarded, ever

    def sent(self, size: int) -> bool:
        """The sender sent ``size`` bytes; False when that is beyond its credit."""
        if size > self.allowed:
            return False
        self.allowed -= size
        self.unacked += size
        self.carried += size
        return True

    def credited(self, size: int) -> bool:
        """The receiver credits ``size`` bytes; False when it never got that many."""
        if size > self.unacked:
            return False
        self.unacked -= size
        self.held += size
        return True

    def release(self) -> int:
        """The credit to pass on to the sender now (all that is held)."""
        size, self.held = self.held, 0
        self.allowed += size
        return size
