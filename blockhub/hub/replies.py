"""The receiver's answers to a request, sealed to the requester and relayed through the
gateway: an acceptance that says where to reach us (when we could not reach it), and a
rejection that says its request was not kept.

A rejection may also say that a request's proof of work was short, and how many bits
are needed.  All go through our own relay budget at the gateway, so rejections, which
a flood of throwaway ids could make us send, are capped (10 a minute, and as many
difficulty answers) to leave the rest for real answers; a sender that misses the
answer learns the difficulty from our HubInfo too.
"""

from twisted.logger import Logger

from blockhub.handshake_bodies import seal_acceptance, seal_rejection
from blockhub.ratelimit import RateLimiter

log = Logger()

REJECTIONS_PER_MINUTE, REJECTIONS_BURST = 10, 5


class Replies:
    def __init__(self, identity, clock, channel, hub, random):
        self.identity = identity
        self.clock = clock
        self.channel = channel
        self.hub = hub  # where we can be reached (peer_endpoint)
        self.random = random
        self._rejections = RateLimiter(REJECTIONS_PER_MINUTE, REJECTIONS_BURST)
        self._difficulties = RateLimiter(REJECTIONS_PER_MINUTE, REJECTIONS_BURST)

    def accept(self, inc) -> None:
        """Tell the requester of ``inc`` (only it) where to reach us, if we have an
        endpoint; without one it can still reach us over a relay circuit."""
        endpoint = self.hub.peer_endpoint()
        if not self.channel.online:
            log.warn("cannot reach {peer} ({reason}) nor tell it so: no gateway; the "
                     "request will expire", peer=inc.peer, reason=inc.reason)
            return
        sealed = seal_acceptance(self.identity, inc.peer, endpoint,
                                 int(self.clock.seconds()), self.random(16),
                                 inc.request.nonce)
        self.channel.relay(inc.peer, "acceptance", sealed)

    def not_kept(self, hub_id: str, request_nonce: str, reason: str) -> None:
        """Tell a requester, sealed and signed, that its request was not kept."""
        self._reject(self._rejections, hub_id, request_nonce, reason, None)

    def needs_work(self, hub_id: str, request_nonce: str, bits: int) -> None:
        """Tell a requester its proof of work was short, and how many bits we ask."""
        self._reject(self._difficulties, hub_id, request_nonce,
                     f"a proof of work of {bits} bits is needed", bits)

    def _reject(self, limiter, hub_id, request_nonce, reason, difficulty) -> None:
        if not self.channel.online or not request_nonce:
            return
        if not limiter.allow("all", self.clock.seconds()):
            return
        sealed = seal_rejection(self.identity, hub_id, int(self.clock.seconds()),
                                self.random(16), request_nonce, reason, difficulty)
        self.channel.relay(hub_id, "rejection", sealed)
