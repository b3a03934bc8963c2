"""Delayed calls, cancelled the one way: a timer slot holds a pending call or None, and
whoever clears it does not care whether the call already ran or was cancelled."""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall


def cancel(call: IDelayedCall | None) -> IDelayedCall | None:
    """Cancel ``call`` if it is still pending; None, or a call that already ran or was
    cancelled, is left alone.  Returns None, so ``self.timer = cancel(self.timer)``
    clears the slot in the same line (typed as the slot, so that mypy allows it)."""
    if call is not None and call.active():
        call.cancel()
    return None
