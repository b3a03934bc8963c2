"""The framed protocol base every blockhub connection uses.

It turns bytes into checked ``Message`` objects and back, and nothing more: it hands
each message to ``messageReceived``, keeps the link alive with pings, drops a peer that
does not finish TLS in time or stays silent past the idle timeout, and closes the
connection, with one logged reason, when the peer breaks the protocol.  Subclasses
decide what messages mean.

Output is paced by the peer's reading: the protocol is a streaming producer on its
transport (through TLS), so while the transport's buffer is full later frames wait in
its own ``SendQueue``, in order.  A peer that stops reading cannot make that queue grow
past ``max_send_queue``: it is aborted (it would not read a goodbye either).  A
graceful close waits for the queue and the transport to drain, for ``close_timeout``
at most, then aborts.  Relay circuits' data goes in the queue's low lane
(``send_low``): it waits behind every other frame, and its own bound is what the
circuits' end-to-end credit lets wait (docs/circuits.md).
"""

from typing import Any

from twisted.internet.interfaces import IHandshakeListener, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from zope.interface import implementer

from blockhub.circuit_flow import WINDOW
from blockhub.errors import ProtocolError
from blockhub.hubinfo import format_address
from blockhub.limits import DEFAULT, Limits
from blockhub.net.keepalive import Keepalive, wheel_for
from blockhub.net.sendqueue import SendQueue
from blockhub.net.tls import peer_id, served_id
from blockhub.timers import cancel
from blockhub.wire import messages
from blockhub.wire.framing import FrameDecoder

# How much a drain writes in one go: enough to refill a TCP buffer (64 KiB).
DRAIN_CHUNK = 64 * 1024


@implementer(IHandshakeListener, IPushProducer)
class FramedProtocol(Protocol, Keepalive):
    """Frames in, messages out; keepalive and idle timeout driven by an injected clock.

    A side pings when it has sent nothing for ``PING_AFTER`` of its idle timeout (the
    gateway: when it has heard nothing, ``Keepalive.PING_UNHEARD``), and any frame
    received proves the connection alive; the keepalives of every connection of a
    clock run on one ``KeepaliveWheel``."""

    log = Logger()
    closing_reason: str | None = None
    # Frame codes whose body goes straight to a callable, without a Message: set by
    # whoever owns the connection for its commonest frames (an admitted hub's relay-raw)
    raw_frames: dict = {}
    # A TLS transport (ITransport, ITCPTransport and the producer interfaces), set by
    # makeConnection.
    transport: Any

    def __init__(self, clock, limits: Limits = DEFAULT, max_frame: int | None = None,
                 idle_timeout: float | None = None, max_send_queue: int | None = None):
        self.clock = clock
        self.limits = limits
        self.max_frame = max_frame or limits.max_frame
        self.idle_timeout = idle_timeout or limits.idle_timeout
        self.decoder = FrameDecoder(self.max_frame)
        self._tls_deadline = None
        self.peer_id: str | None = None
        self.served_id: str | None = None  # the key we presented (net.tls.served_id)
        self.address = "?"
        self._ping_n = 0
        self._heard = self._sent = 0.0  # when anything last came, and went (Keepalive)
        self._pinged = -1.0  # when we last pinged
        self._secured = False
        self.connected = False
        self.host = "?"
        self.max_send_queue = max_send_queue or limits.max_send_queue
        self.queue = SendQueue(merge=messages.join_circuit_data)
        # Each circuit lets at most its window wait here; twice that leaves room.
        self.max_low_queue = max(self.max_send_queue,
                                 limits.max_circuits_per_hub * 2 * WINDOW)
        self.paused = False  # the transport's buffer is full; frames wait in the queue
        self._draining = False
        self._producing = False  # registered as the transport's producer
        self._close_deadline = None

    # -- connection lifecycle --------------------------------------------------------
    def connectionMade(self):
        self.connected = True
        peer = self.transport.getPeer()
        self.address = format_address(peer)
        self.host = getattr(peer, "host", "?")
        self._producing = True  # before: a transport already gone calls stopProducing
        self.transport.registerProducer(self, True)
        try:
            # Small frames (presence, acks) must not wait for Nagle's algorithm.
            self.transport.setTcpNoDelay(True)
        except (AttributeError, NotImplementedError, OSError):
            pass  # not a TCP transport (tests, UNIX sockets)
        self._heard = self._sent = self.clock.seconds()
        wheel_for(self.clock).watch(self, self._heard + self._ping_after())
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
        self._tls_deadline = cancel(self._tls_deadline)
        self.peer_id = peer_id(self.transport)
        self.served_id = served_id(self.transport)
        self._secured = True
        self.secured()

    def secured(self):
        """Called once the peer's identity is known (``self.peer_id``)."""

    def connectionLost(self, reason):
        self.connected = False
        self.queue.clear()
        self._producing = False
        self._tls_deadline = cancel(self._tls_deadline)
        self._close_deadline = cancel(self._close_deadline)
        wheel_for(self.clock).unwatch(self)
        self.lost(self.closing_reason or reason.getErrorMessage())

    def lost(self, reason: str):
        """Called once when the connection is gone, with a short reason."""

    # -- bytes in --------------------------------------------------------------------
    def dataReceived(self, data: bytes):
        if self.closing_reason:
            return  # decided: nothing more is read, judged or answered
        self._heard = self.clock.seconds()
        try:
            for code, body in self.decoder.feed(data):
                if not self.connected or self.closing_reason:
                    return
                if code == messages.PING:
                    self._write(messages.encode_pong(messages.ping_number(body)))
                    continue
                raw = self.raw_frames.get(code)
                if raw is not None:
                    raw(body)
                    continue
                message = messages.decode(code, body)
                if message.kind != "pong":
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
        """Log it, tell the peer why (one bounded frame: ``close`` runs once per
        connection, so a peer cannot make us answer twice), and close."""
        self.log.warn("protocol error from {address} ({peer}): {error}", address=self.address,
                      peer=self.peer_id, error=str(error), error_type=type(error).__name__)
        self.close(f"protocol error: {error}", refuse=True)

    def tell(self, reason: str):
        """The last frame before a refusing close: ``refused`` with the reason (the peer
        protocol says ``error`` instead)."""
        self.send("refused", reason=reason[:messages.MAX_REASON])

    # -- bytes out -------------------------------------------------------------------
    def send(self, kind: str, /, **fields):
        if self.connected and not self.closing_reason:
            self._write(messages.encode(messages.make(kind, **fields), self.max_frame))

    def send_frame(self, frame: bytes):
        """Write an already encoded frame (fan-out encodes once for many receivers)."""
        if self.connected and not self.closing_reason:
            self._write(frame)

    def send_frames(self, frames):
        """Write many already encoded frames, in order, as fast as the peer reads them.
        The frames are shared (a gateway's welcome list is every hub's frame, kept in
        its table), so they are held by reference and not counted against
        ``max_send_queue``; frames sent after them wait behind them."""
        if self.connected and not self.closing_reason:
            self._sent = self.clock.seconds()
            self.queue.append_shared(frames)
            self._drain()

    def send_low(self, frame: bytes, key=None):
        """Write an encoded frame that yields to every other (a circuit's data): while
        anything waits, it waits behind all of it, in order with the frames of ``key``."""
        if self.connected and not self.closing_reason:
            self._sent = self.clock.seconds()
            if not self.paused and not self.queue:
                self.transport.write(frame)
            else:
                self.queue.append_low(frame, key)
                self._bound()

    def drop_low(self, key):
        """Forget the low frames of ``key`` not written yet (a circuit that ended)."""
        self.queue.drop_low(key)

    def _write(self, frame: bytes):
        self._sent = self.clock.seconds()
        if not self.paused and not self.queue:
            self.transport.write(frame)
            return
        self.queue.append(frame)
        self._bound()

    def _bound(self):
        queue = self.queue
        if queue.bytes > self.max_send_queue or queue.low_bytes > self.max_low_queue:
            self.send_queue_full()
            self.log.warn("{address} ({peer}) does not read: over {limit} bytes waiting to "
                          "be sent; dropping it", address=self.address, peer=self.peer_id,
                          limit=self.max_send_queue)
            self.close(f"not reading: more than {self.max_send_queue} bytes waiting to be "
                       "sent", abort=True)

    def send_queue_full(self):
        """Hook for counting; the connection is aborted right after."""

    # -- flow control (IPushProducer, called by the transport) ------------------------
    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        self._drain()

    def stopProducing(self):
        self._producing = False
        self.queue.clear()

    def _drain(self):
        """Write what waits, a chunk at a time, until the transport is full again."""
        if self._draining:
            return
        self._draining = True
        try:
            while self.queue and not self.paused and self.connected:
                self.transport.writeSequence(self.queue.take(DRAIN_CHUNK))
        finally:
            self._draining = False
        if self.closing_reason and not self.queue:
            self._finish_close()
        elif not self.queue and not self.paused and self.connected:
            self.drained()

    def drained(self):
        """Hook: everything waiting was handed to the transport, which takes more now
        (a sender that stopped while ``paused`` may go on)."""

    # -- closing ---------------------------------------------------------------------
    def close(self, reason: str, refuse: bool = False, abort: bool = False):
        """Close this connection once, remembering why; with ``refuse`` tell the peer.
        ``abort`` drops it at once (a peer that stalls gets no clean TLS goodbye);
        otherwise what is queued is sent first, within ``close_timeout``."""
        if self.closing_reason or not self.connected:
            return
        if refuse:
            self.tell(reason)
        self.closing_reason = reason
        if abort:
            self.queue.clear()
            self.transport.abortConnection()
            return
        self._close_deadline = self.clock.callLater(self.limits.close_timeout,
                                                    self._close_expired)
        if not self.queue:
            self._finish_close()

    def _finish_close(self):
        if self._producing:
            self._producing = False
            self.transport.unregisterProducer()  # TLS and TCP close only without one
        self.transport.loseConnection()

    def _close_expired(self):
        self._close_deadline = None
        if self.connected:
            self.close_timed_out()
            self.log.warn("{address} ({peer}) did not take its last frames within "
                          "{timeout}s; aborting", address=self.address, peer=self.peer_id,
                          timeout=self.limits.close_timeout)
            self.queue.clear()
            self.transport.abortConnection()

    def close_timed_out(self):
        """Hook for counting; the connection is aborted right after."""
