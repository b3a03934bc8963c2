"""The framed protocol base every blockhub connection uses.

It turns bytes into checked ``Message`` objects and back, and nothing more: it hands
each message to ``messageReceived``, keeps the link alive with pings, drops a peer that
does not finish TLS in time or stays silent past the idle timeout, and closes the
connection, with one logged reason, when the peer breaks the protocol.  Subclasses
decide what messages mean.
"""

from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from blockhub.errors import ProtocolError
from blockhub.limits import DEFAULT, Limits
from blockhub.net.tls import peer_id
from blockhub.wire import messages
from blockhub.wire.framing import FrameDecoder


def format_address(address) -> str:
    """``HOST:PORT`` for an IPv4 or IPv6 Twisted address, IPv6 in brackets."""
    host, port = getattr(address, "host", "?"), getattr(address, "port", 0)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@implementer(IHandshakeListener)
class FramedProtocol(Protocol, TimeoutMixin):
    """Frames in, messages out; keepalive and idle timeout driven by an injected clock."""

    log = Logger()
    closing_reason: str | None = None

    def __init__(self, clock, limits: Limits = DEFAULT, max_frame: int | None = None,
                 idle_timeout: float | None = None):
        self.clock = clock
        self.callLater = clock.callLater  # TimeoutMixin's timer comes from our clock
        self.limits = limits
        self.max_frame = max_frame or limits.max_frame
        self.idle_timeout = idle_timeout or limits.idle_timeout
        self.decoder = FrameDecoder(self.max_frame)
        self._tls_deadline = None
        self.peer_id: str | None = None
        self.address = "?"
        self._pinger = None
        self._ping_n = 0
        self.connected = False

    # -- connection lifecycle --------------------------------------------------------
    def connectionMade(self):
        self.connected = True
        self.address = format_address(self.transport.getPeer())
        try:
            # Small frames (presence, acks) must not wait for Nagle's algorithm.
            self.transport.setTcpNoDelay(True)
        except (AttributeError, NotImplementedError, OSError):
            pass  # not a TCP transport (tests, UNIX sockets)
        self.setTimeout(self.idle_timeout)
        self._tls_deadline = self.clock.callLater(self.limits.tls_timeout, self._tls_expired)

    def _tls_expired(self):
        self._tls_deadline = None
        self.tls_timed_out()
        self.close(f"TLS handshake not completed within {self.limits.tls_timeout:g}s",
                   abort=True)

    def tls_timed_out(self):
        """Hook for counting; the connection is closed right after."""

    def handshakeCompleted(self):
        """TLS is up and the peer's key is proven; subclasses continue in ``secured``."""
        if self._tls_deadline is not None and self._tls_deadline.active():
            self._tls_deadline.cancel()
        self._tls_deadline = None
        self.peer_id = peer_id(self.transport)
        self._pinger = LoopingCall(self._ping)
        self._pinger.clock = self.clock
        self._pinger.start(max(self.idle_timeout / 3.0, 0.05), now=False)
        self.secured()

    def secured(self):
        """Called once the peer's identity is known (``self.peer_id``)."""

    def connectionLost(self, reason):
        self.connected = False
        self.setTimeout(None)
        if self._tls_deadline is not None and self._tls_deadline.active():
            self._tls_deadline.cancel()
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        self.lost(self.closing_reason or reason.getErrorMessage())

    def lost(self, reason: str):
        """Called once when the connection is gone, with a short reason."""

    def timeoutConnection(self):
        self.close(f"silent for {self.idle_timeout:g}s (idle timeout)")

    # -- bytes in --------------------------------------------------------------------
    def dataReceived(self, data: bytes):
        self.resetTimeout()
        try:
            for code, body in self.decoder.feed(data):
                if not self.connected or self.closing_reason:
                    return
                message = messages.decode(code, body)
                if message.kind == "ping":
                    self.send("pong", n=message["n"])
                elif message.kind != "pong":
                    self.messageReceived(message)
        except ProtocolError as e:
            self.protocol_error(e)
        except Exception:
            self.log.failure("bug while handling a message from {address}",
                             address=self.address)
            self.close("internal error while handling a message")

    def messageReceived(self, message: messages.Message):
        raise NotImplementedError

    def protocol_error(self, error: ProtocolError):
        self.log.warn("protocol error from {address} ({peer}): {error}", address=self.address,
                      peer=self.peer_id, error=str(error), error_type=type(error).__name__)
        self.close(f"protocol error: {error}")

    # -- bytes out -------------------------------------------------------------------
    def send(self, kind: str, /, **fields):
        if self.connected and not self.closing_reason:
            self.transport.write(messages.encode(messages.make(kind, **fields), self.max_frame))

    def send_message(self, message: messages.Message):
        """Write a message whose fields were already checked (relaying what we just
        decoded): no second validation on the hot path."""
        if self.connected and not self.closing_reason:
            self.transport.write(messages.encode(message, self.max_frame))

    def send_frame(self, frame: bytes):
        """Write an already encoded frame (fan-out encodes once for many receivers)."""
        if self.connected and not self.closing_reason:
            self.transport.write(frame)

    def send_frames(self, frames):
        """Write many already encoded frames in one go."""
        if self.connected and not self.closing_reason:
            self.transport.writeSequence(frames)

    def _ping(self):
        self._ping_n += 1
        self.send("ping", n=self._ping_n)

    def close(self, reason: str, refuse: bool = False, abort: bool = False):
        """Close this connection once, remembering why; optionally tell the peer.
        ``abort`` drops it at once (a peer that stalls gets no clean TLS goodbye)."""
        if self.closing_reason or not self.connected:
            return
        if refuse:
            self.send("refused", reason=reason[:500])
        self.closing_reason = reason
        if abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()
