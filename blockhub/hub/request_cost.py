"""What an unsolicited request must cost: the proof-of-work difficulty this hub asks
(``--request-difficulty BITS|auto``), what it publishes and what it accepts.

A fixed difficulty is published as it is.  ``auto`` asks nothing while few requests
wait for the operator and more as they pile up (``auto_bits``), and less again as they
clear.  HubInfo updates are rate-limited at the gateway, and senders learn the new
value only from the presence that carries it, so a change is published at most every
``PUBLISH_INTERVAL`` seconds, and a difficulty stays accepted for ``GRACE`` seconds
after a higher one replaced it.  Nothing here hashes; ``Handshakes`` asks ``required``
and checks the proof.
"""

import math

from twisted.internet.interfaces import IDelayedCall

from blockhub.timers import cancel

GRACE = 60.0
PUBLISH_INTERVAL = 10.0
MAX_DIFFICULTY = 24  # what an operator may ask: about 20 s of a sender's core here
AUTO_FREE = 4  # pending requests that cost nothing under auto
AUTO_MIN, AUTO_MAX = 12, 22


def auto_bits(pending: int) -> int:
    """0 below ``AUTO_FREE`` pending requests, then 12 bits, and 2 more each time the
    number doubles, up to 22."""
    if pending < AUTO_FREE:
        return 0
    return min(AUTO_MAX, AUTO_MIN + 2 * int(math.log2(pending / AUTO_FREE)))


def parse_difficulty(text: str) -> int | None:
    """``--request-difficulty``: a number of bits, or None for ``auto``."""
    if str(text).strip().lower() == "auto":
        return None
    try:
        bits = int(text)
    except ValueError:
        bits = -1
    if not 0 <= bits <= MAX_DIFFICULTY:
        raise ValueError(f"--request-difficulty is 0 to {MAX_DIFFICULTY} bits or auto, "
                         f"not {text!r}")
    return bits


class RequestCost:
    def __init__(self, clock, setting: int | None, publish=lambda meta: None):
        """``setting``: bits, or None for auto; ``publish(meta)`` sends our HubInfo
        again with these ``meta`` keys."""
        self.clock = clock
        self.auto = setting is None
        self.published: int = 0 if setting is None else setting
        self.publish = publish
        self._target = self.published
        self._earlier: list[tuple[int, float]] = []  # (bits, accepted until)
        self._last_published = -PUBLISH_INTERVAL
        self._timer: IDelayedCall | None = None

    def meta(self) -> dict:
        """HubInfo ``meta`` keys: ``pow`` whenever a difficulty may be asked (under auto
        even at 0, so senders know to send a proof field and read the answer)."""
        return {"pow": self.published} if self.auto or self.published else {}

    def required(self) -> int:
        """The fewest bits a proof may have now."""
        now = self.clock.seconds()
        self._earlier = [(bits, until) for bits, until in self._earlier if until > now]
        return min([self.published] + [bits for bits, _ in self._earlier])

    def pending_changed(self, pending: int) -> None:
        if not self.auto or auto_bits(pending) == self._target:
            return
        self._target = auto_bits(pending)
        if self._timer is None:
            wait = self._last_published + PUBLISH_INTERVAL - self.clock.seconds()
            self._timer = self.clock.callLater(max(0.0, wait), self._publish)

    def _publish(self) -> None:
        self._timer = None
        if self._target == self.published:
            return
        now = self.clock.seconds()
        self._earlier.append((self.published, now + GRACE))
        self.published, self._last_published = self._target, now
        self.publish(self.meta())

    def status(self) -> dict:
        """``status``'s ``request_difficulty``: what we publish, what we accept now."""
        return {"setting": "auto" if self.auto else self.published,
                "published": self.published, "required": self.required()}

    def stop(self) -> None:
        self._timer = cancel(self._timer)
