"""A load process: many client connections, driven by JSON-line commands on stdin,
reporting JSON-line events on stdout, all timestamps from ``time.monotonic`` (one
system-wide clock on Linux, so the benchmark compares them across processes).

The connections speak to one of three servers:

``blockhub``  a real gateway: blockhub's key-pinned TLS client (``PinnedClientCreator``)
              and a thin ``FramedProtocol`` subclass that answers ``hello`` with a signed
              ``join`` (as tests/integration/spy_hub.py does), answers pings, and sends
              ``update`` and ``relay`` on command.  To keep the load process cheap it
              does not verify the HubInfo it receives: presence frames are recognised by
              their canonical-JSON prefix and only ``updated`` ones are parsed.  Each hub
              has its own random Ed25519 identity and its own 127.x.y.z source address.
``ceiling``   ceiling_server.py: the same frame shapes and sizes, opaque bodies.
``mailbox``   magic-wormhole's mailbox server over WebSocket: pairs of clients bind,
              allocate/claim a nameplate, open the mailbox and ``add`` messages.

Commands (``{"cmd": NAME, ...}``) and their answers are listed at ``Worker.cmd_*``.
The process stops when its standard input closes or after ``--lifetime`` seconds.
"""

import argparse
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from twisted.internet import reactor  # noqa: E402
from twisted.internet.endpoints import (  # noqa: E402
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.protocol import Protocol  # noqa: E402
from workerio import emit, serve  # noqa: E402

now = time.monotonic
HEADER = struct.Struct(">IBB")
RETRIES = 3  # tries of a hub dropped before admission (blockhub only)
RETRY_AFTER = 1.0  # seconds before it tries again




def source_address(i: int):
    """A distinct loopback source address per connection (127.0.0.2 onwards), as hubs on
    different machines would have; the gateway limits unauthenticated connections per
    address."""
    a = 2 + i
    return (f"127.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}", 0)


def ceiling_frame(code: int, body: bytes) -> bytes:
    return HEADER.pack(2 + len(body), 1, code) + body


# -- sizes: blockhub's real frames, so the ceiling and the mailbox carry the same bytes ---
def random_identity():
    from nacl.signing import SigningKey

    from blockhub.identity import Identity
    return Identity(SigningKey(os.urandom(32)))


def hub_name(index: int) -> str:
    return f"hub-{index:07d}"


def sealed_request(sender, receiver_id: str) -> bytes:
    from blockhub.handshake_bodies import seal_request
    return seal_request(sender, receiver_id, "127.0.0.1:40000", int(time.time()),
                        os.urandom(16), "", "127.0.0.1")


def blockhub_sizes() -> dict:
    from blockhub.hubinfo import make_hubinfo
    from blockhub.wire import messages
    from blockhub.wire.canonical import b64
    a, b = random_identity(), random_identity()
    info = make_hubinfo(a, hub_name(0), int(time.time() * 1000), {})
    presence = messages.encode(messages.make("presence", event="joined", hub=a.id,
                                             hubinfo=info.to_json()))
    sealed = sealed_request(a, b.id)
    relay = messages.encode(messages.make("relay", to=b.id, kind="request",
                                          sealed=b64(sealed)))
    return {"presence": len(presence) - 6, "relay": len(relay) - 6, "sealed": len(sealed)}


# -- blockhub ------------------------------------------------------------------------------
def blockhub_protocol_class():
    from blockhub.errors import ProtocolError
    from blockhub.hubinfo import make_hubinfo
    from blockhub.net.framed import FramedProtocol
    from blockhub.wire import features, messages
    from blockhub.wire.canonical import b64

    class BlockhubHub(FramedProtocol):
        system = "blockhub"
        PING_AFTER = 1 / 2  # as a hub's gateway link (HubGatewayProtocol) pings

        def __init__(self, worker, index, identity):
            super().__init__(clock=reactor)
            self.worker, self.index, self.identity = worker, index, identity
            self.id = identity.id
            self.listed = 0
            self.admitted = False
            self.partner = None
            self.relay_frame = None
            self.raw = False  # both we and the gateway speak raw-relay/1
            self.seq = 0

        def dataReceived(self, data):
            t = now()
            self._heard = reactor.seconds()  # as FramedProtocol.dataReceived notes it
            try:
                frames = self.decoder.feed(data)
            except ProtocolError as e:
                self.worker.note_error(f"frame: {e}")
                self.transport.abortConnection()
                return
            w = self.worker
            for code, body in frames:
                if code == 5:
                    if body.startswith(b'{"event":"joined"'):
                        self.listed += 1
                        if self.listed == w.list_target:
                            w.list_reached(t)
                    elif body.startswith(b'{"event":"left"'):
                        self.listed -= 1
                    else:
                        d = json.loads(body)
                        w.updated((d["hub"], d["hubinfo"]["body"]["seq"]), t)
                elif code == 11 or code == messages.DELIVER_RAW:
                    w.delivered(self, t)
                elif code == 7:
                    self.send("pong", n=json.loads(body)["n"])
                elif code == 8:
                    pass
                elif code == 12:
                    w.relay_refused += 1
                else:
                    try:
                        self.message(messages.decode(code, body), t)
                    except ProtocolError as e:
                        w.note_error(f"{code}: {e}")

        def message(self, m, t):
            if m.kind == "hello":
                self.seq = int(time.time() * 1000)
                info = make_hubinfo(self.identity, hub_name(self.index), self.seq, {})
                listed = m.fields.get("features")
                # raw-relay/1 where the gateway speaks it, as a hub of this version
                # would (BENCH_JSON_RELAY: the JSON relay and deliver of before).
                self.raw = (listed is not None and features.RAW_RELAY in listed
                            and not os.environ.get("BENCH_JSON_RELAY"))
                self.send("join", hubinfo=info.to_json(),
                          features=[features.RAW_RELAY] if self.raw else None)
            elif m.kind == "welcome":
                self.admitted = True
                self.worker.admitted(self, t)
            elif m.kind == "refused":
                self.worker.note_error(f"refused: {m['reason']}")

        def send_update(self) -> int:
            self.seq = max(self.seq + 1, int(time.time() * 1000))
            info = make_hubinfo(self.identity, hub_name(self.index), self.seq, {})
            self.send("update", hubinfo=info.to_json())
            return self.seq

        def pair_with(self, partner):
            self.partner = partner
            sealed = sealed_request(self.identity, partner.id)
            self.relay_frame = (
                messages.encode_relay_raw(partner.id, "request", sealed) if self.raw else
                messages.encode(messages.make("relay", to=partner.id, kind="request",
                                              sealed=b64(sealed))))

        def send_relay(self):
            self.transport.write(self.relay_frame)

        def lost(self, reason):
            self.worker.lost(self, reason)

        def close_now(self):
            # FramedProtocol's close: it unregisters its producer first, without which
            # TLS and TCP never close (and ``close`` waited for its timeout)
            if self.transport is not None:
                self.close("benchmark closing")

    return BlockhubHub


# -- ceiling -------------------------------------------------------------------------------
class CeilingHub(Protocol):
    system = "ceiling"

    def __init__(self, worker, index, sizes):
        from blockhub.wire.framing import FrameDecoder  # the same client-side decoder
        self.worker, self.index, self.sizes = worker, index, sizes
        self.key = os.urandom(32)
        self.id = self.key.hex()
        self.decoder = FrameDecoder()
        self.listed = 0
        self.admitted = False
        self.partner = None
        self.relay_frame = None
        self.seq = 0
        self.connected = False

    def connectionMade(self):
        self.connected = True
        if os.environ.get("BENCH_NODELAY"):
            self.transport.setTcpNoDelay(True)
        filler = b"j" * (self.sizes["presence"] - 1 - 32)
        self.transport.write(ceiling_frame(2, self.key + filler))

    def dataReceived(self, data):
        t = now()
        w = self.worker
        for code, body in self.decoder.feed(data):
            if code == 5:
                kind = body[:1]
                if kind == b"J":
                    self.listed += 1
                    if self.listed == w.list_target:
                        w.list_reached(t)
                elif kind == b"L":
                    self.listed -= 1
                else:
                    w.updated((body[1:33].hex(), struct.unpack_from(">Q", body, 33)[0]), t)
            elif code == 11:
                w.delivered(self, t)
            elif code == 24:
                w.stream_acked(self, t)
            elif code == 3:
                self.admitted = True
                w.admitted(self, t)

    def send_update(self) -> int:
        self.seq += 1
        body = b"U" + self.key + struct.pack(">Q", self.seq)
        body += b"u" * (self.sizes["presence"] - len(body))
        self.transport.write(ceiling_frame(6, body))
        return self.seq

    def pair_with(self, partner):
        self.partner = partner
        payload = b"r" * (self.sizes["relay"] - 32)
        self.relay_frame = ceiling_frame(10, partner.key + payload)

    def send_relay(self):
        self.transport.write(self.relay_frame)

    def connectionLost(self, reason):
        self.connected = False
        self.worker.lost(self, reason.getErrorMessage())

    def close_now(self):
        if self.transport is not None:
            self.transport.loseConnection()


# -- the wormhole mailbox ------------------------------------------------------------------
def mailbox_classes():
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol

    class MailboxClient(WebSocketClientProtocol):
        system = "mailbox"

        def __init__(self, worker, index, pair, role):
            super().__init__()
            self.worker, self.index, self.pair, self.role = worker, index, pair, role
            self.side = f"{role}{index:07d}{os.urandom(4).hex()}"
            self.id = self.side
            self.admitted = False
            self.partner = None
            self.listed = 0
            self.connected = False
            self.phase = 0

        def onOpen(self):
            self.connected = True

        def send_json(self, **msg):
            self.sendMessage(json.dumps(msg).encode("utf-8"), False)

        def onMessage(self, payload, isBinary):
            t = now()
            m = json.loads(payload)
            kind = m.get("type")
            if kind == "message":
                if m.get("side") != self.side:
                    self.worker.delivered(self, t)
            elif kind == "ack":
                pass
            elif kind == "welcome":
                self.send_json(type="bind", appid="blockhub-bench", side=self.side)
                if self.role == "a":
                    self.send_json(type="allocate")
                elif self.pair.get("nameplate"):
                    self.send_json(type="claim", nameplate=self.pair["nameplate"])
            elif kind == "allocated":
                self.pair["nameplate"] = m["nameplate"]
                self.send_json(type="claim", nameplate=m["nameplate"])
            elif kind == "claimed":
                self.send_json(type="open", mailbox=m["mailbox"])
                self.send_json(type="ping", ping=1)
            elif kind == "pong":
                if not self.admitted:
                    self.admitted = True
                    self.worker.admitted(self, t)
                    if self.role == "a":
                        self.pair["a_ready"](self)
            elif kind == "error":
                self.worker.note_error(f"mailbox: {m.get('error')}")

        def pair_with(self, partner):
            self.partner = partner
            self.body = os.urandom(self.worker.sizes["sealed"]).hex()

        def send_relay(self):
            self.phase += 1
            self.send_json(type="add", phase=str(self.phase), body=self.body)

        def onClose(self, wasClean, code, reason):
            if self.connected or not self.admitted:
                self.connected = False
                self.worker.lost(self, str(reason))

        def close_now(self):
            if self.connected:
                self.sendClose()

    class MailboxFactory(WebSocketClientFactory):
        def __init__(self, url, make):
            super().__init__(url)
            self.make = make
            self.setProtocolOptions(autoPingInterval=None)

        def buildProtocol(self, addr):
            p = self.make()
            p.factory = self
            return p

    return MailboxClient, MailboxFactory


# -- the worker ------------------------------------------------------------------------------
class Worker:
    def __init__(self):
        self.conns = []
        self.sizes = blockhub_sizes()
        self.list_target = None
        self.list_need = 0
        self.list_count = 0
        self.list_t_last = None
        self.updates: dict = {}        # (hub, seq) -> [count, first t, last t]
        self.update_expect: dict = {}  # (hub, seq) -> count expected here
        self.errors: list[str] = []
        self.error_count = 0
        self._connect = None
        self._closing = None
        self.relay_refused = 0
        self.reset_delivery()
        self.pp = None
        self.stream = None
        self._blockhub_class = None
        self._mailbox = None

    # -- bookkeeping ------------------------------------------------------------------
    def note_error(self, text):
        self.error_count += 1
        if len(self.errors) < 5:
            self.errors.append(text[:300])

    def reset_delivery(self):
        self.delivered_n = 0
        self.delivered_first = None
        self.delivered_last = None
        self.deliver_expect = None

    # -- connect ----------------------------------------------------------------------
    def cmd_connect(self, system, count, concurrency=50, src_base=0, port=None,
                    gateway=None, timeout=120.0, pairs=False, **_):
        """Open ``count`` connections (``concurrency`` at a time); answer ``connected``
        once every one is admitted or failed."""
        if self._connect is not None:
            raise RuntimeError("a connect is already running")
        c = self._connect = {"system": system, "todo": count, "started": 0, "done": 0,
                             "ok": 0, "failed": 0, "t0": now(), "t_first": None,
                             "t_last": None, "port": port, "gateway": gateway,
                             "src_base": src_base, "first_index": len(self.conns),
                             "pairs": pairs, "retried": 0}
        c["deadline"] = reactor.callLater(timeout, self._connect_timeout)
        if system == "mailbox":
            c["todo"] = count - count % 2
            for _ in range(min(concurrency, c["todo"] // 2)):
                self._start_mailbox_pair()
        else:
            for _ in range(min(concurrency, count)):
                self._start_one()
        if c["todo"] == 0:
            self._connect_finished()

    def _start_one(self, again=None):
        """Dial the next hub, or (``again``: a hub dropped before admission) that one
        anew, with a fresh identity, in its place."""
        c = self._connect
        if c is None or (again is None and c["started"] >= c["todo"]):
            return
        if again is None:
            i = c["started"]
            c["started"] += 1
        else:
            i = again.index - c["first_index"]
        index = c["first_index"] + i
        src = source_address(c["src_base"] + i)
        if c["system"] == "blockhub":
            from blockhub.net.tls import PinnedClientCreator
            if self._blockhub_class is None:
                self._blockhub_class = blockhub_protocol_class()
            identity = random_identity()
            proto = self._blockhub_class(self, index, identity)
            creator = PinnedClientCreator(identity, c["gateway"])
        else:
            import tlsmin
            proto = CeilingHub(self, index, self.sizes)
            creator = tlsmin.Client()
        proto.bench_started = now()
        if again is None:
            self.conns.append(proto)
        else:
            proto.bench_tries = getattr(again, "bench_tries", 1) + 1
            self.conns[index] = proto
        endpoint = wrapClientTLS(creator, TCP4ClientEndpoint(
            reactor, "127.0.0.1", c["port"], timeout=30, bindAddress=src))
        d = connectProtocol(endpoint, proto)
        d.addErrback(lambda f, p=proto: self._failed(p, f.getErrorMessage()))

    def _start_mailbox_pair(self):
        c = self._connect
        if c is None or c["started"] >= c["todo"]:
            return
        i = c["started"] // 2
        c["started"] += 2
        if self._mailbox is None:
            self._mailbox = mailbox_classes()
        client_cls, factory_cls = self._mailbox
        url = f"ws://127.0.0.1:{c['port']}/v1"
        index = c["first_index"] + i
        pair = {}
        a = client_cls(self, index, pair, "a")
        b = client_cls(self, index, pair, "b")
        a.pair_with(b)
        b.pair_with(a)
        self.conns += [a, b]

        def dial(proto, n):
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", c["port"], timeout=30,
                                          bindAddress=source_address(c["src_base"] + n))
            d = endpoint.connect(factory_cls(url, lambda: proto))
            d.addErrback(lambda f: self._failed(proto, f.getErrorMessage()))

        pair["a_ready"] = lambda _a: dial(b, 2 * i + 1)
        dial(a, 2 * i)

    def admitted(self, proto, t):
        c = self._connect
        if c is None:
            return
        c["ok"] += 1
        c["t_first"] = t if c["t_first"] is None else c["t_first"]
        c["t_last"] = t
        self._one_done()

    def _failed(self, proto, reason):
        c = self._connect
        if c is None or getattr(proto, "bench_done", False):
            return
        proto.bench_done = True
        if proto.system == "blockhub" and c["retried"] < c["todo"] and \
                getattr(proto, "bench_tries", 1) < RETRIES:
            # A hub whose gateway dropped it before admission (a TLS handshake that
            # outlasted the gateway's timeout in a storm) tries again after a pause, as
            # the hub's gateway link does; the storm's time includes it.
            c["retried"] += 1
            reactor.callLater(RETRY_AFTER, self._start_one, proto)
            return
        c["failed"] += 1
        self.note_error(f"connect: {reason}")
        if proto.system == "mailbox" and proto.role == "a":
            c["failed"] += 1  # its partner never starts
        self._one_done()

    def _one_done(self):
        c = self._connect
        c["done"] = c["ok"] + c["failed"]
        if c["done"] >= c["todo"]:
            self._connect_finished()
        elif c["system"] == "mailbox":
            if c["done"] % 2 == 0:
                self._start_mailbox_pair()
        else:
            self._start_one()

    def _connect_timeout(self):
        c = self._connect
        if c is not None:
            c["deadline"] = None
            self.note_error(f"connect: only {c['ok']} of {c['todo']} admitted in time")
            self._connect_finished()

    def _connect_finished(self):
        c, self._connect = self._connect, None
        if c["deadline"] is not None and c["deadline"].active():
            c["deadline"].cancel()
        mine = self.conns[c["first_index"]:]
        if c["pairs"] and c["system"] != "mailbox":
            half = len(mine) // 2
            for a, b in zip(mine[:half], mine[half:2 * half]):
                a.pair_with(b)
        emit("connected", ok=c["ok"], failed=c["failed"], retried=c["retried"],
             t0=c["t0"], t_first=c["t_first"],
             t_last=c["t_last"], ids=[p.id for p in mine if p.admitted],
             errors=self.errors[:5], error_count=self.error_count)

    def lost(self, proto, reason):
        if not getattr(proto, "admitted", False):
            self._failed(proto, f"lost before admission: {reason}")
        proto.bench_lost = True
        if self._closing is not None:
            self._closing["left"] -= 1
            if self._closing["left"] <= 0:
                self._closed()

    # -- presence: complete lists, updates --------------------------------------------
    def cmd_expect_list(self, n, conns=None, **_):
        """Answer ``list_done`` once ``conns`` connections (default: all there are) have
        each heard of ``n`` others.  Sent before ``connect``, it times the storm."""
        self.list_target = n
        self.list_need = conns if conns is not None else len(self.conns)
        self.list_count = sum(1 for p in self.conns if p.listed >= n)
        self.list_t_last = now() if self.list_count else None
        self._check_list()

    def list_reached(self, t):
        self.list_count += 1
        self.list_t_last = t
        self._check_list()

    def _check_list(self):
        if self.list_target is not None and self.list_count >= self.list_need:
            emit("list_done", t_last=self.list_t_last, n=self.list_count)
            self.list_target = None

    def cmd_lists(self, **_):
        counts = [p.listed for p in self.conns]
        emit("lists", min=min(counts) if counts else 0, max=max(counts) if counts else 0,
             n=len(counts))

    def cmd_update(self, index, **_):
        p = self.conns[index]
        t = now()
        seq = p.send_update()
        emit("sent", t=t, hub=p.id, seq=seq)

    def cmd_expect_update(self, hub, seq, count, **_):
        key = (hub, seq)
        self.update_expect[key] = count
        self._check_update(key)

    def updated(self, key, t):
        rec = self.updates.get(key)
        if rec is None:
            rec = self.updates[key] = [0, t, t]
        rec[0] += 1
        rec[2] = t
        if key in self.update_expect:
            self._check_update(key)

    def _check_update(self, key):
        want = self.update_expect.get(key)
        rec = self.updates.get(key, [0, None, None])
        if want is not None and rec[0] >= want:
            del self.update_expect[key]
            self.updates.pop(key, None)
            emit("update_done", hub=key[0], seq=key[1], n=rec[0], t_first=rec[1],
                 t_last=rec[2])

    # -- relays -----------------------------------------------------------------------
    def senders(self):
        return [p for p in self.conns if p.partner is not None
                and getattr(p, "role", "a") == "a"]

    def cmd_pair(self, senders, receivers, count, **_):
        """Pair ``count`` connections from index ``senders`` on with as many from
        ``receivers`` on (two earlier ``connect``s, perhaps to different gateways):
        each sender relays to its receiver.  Answers ``paired``."""
        for i in range(count):
            self.conns[senders + i].pair_with(self.conns[receivers + i])
        emit("paired", n=count)

    def cmd_reset(self, **_):
        self.reset_delivery()
        self.relay_refused = 0
        emit("reset")

    def cmd_burst(self, count, **_):
        """Every sender sends ``count`` relays to its partner, all at once."""
        senders = self.senders()
        t_first = now()
        for _ in range(count):
            for s in senders:
                s.send_relay()
        emit("burst_sent", t_first=t_first, t_last=now(), n=count * len(senders))

    def cmd_expect_deliver(self, n, **_):
        self.deliver_expect = n
        self._check_deliver()

    def delivered(self, proto, t):
        self.delivered_n += 1
        if self.delivered_first is None:
            self.delivered_first = t
        self.delivered_last = t
        if self.pp is not None and proto is self.pp["target"]:
            self._pingpong_got(t)
        elif self.deliver_expect is not None:
            self._check_deliver()

    def _check_deliver(self):
        if self.deliver_expect is not None and self.delivered_n >= self.deliver_expect:
            self.deliver_expect = None
            emit("deliver_done", n=self.delivered_n, t_first=self.delivered_first,
                 t_last=self.delivered_last, refused=self.relay_refused)

    def cmd_deliveries(self, **_):
        emit("deliveries", n=self.delivered_n, t_first=self.delivered_first,
             t_last=self.delivered_last, refused=self.relay_refused)

    def cmd_pingpong(self, samples, gap=0.002, per_sender=10, **_):
        """Light load: one relay at a time, the next after the previous arrived (and
        ``gap`` seconds); each sender sends at most ``per_sender``."""
        senders = self.senders()
        if not senders or samples > per_sender * len(senders):
            raise RuntimeError(f"{samples} samples need more than {len(senders)} senders")
        self.pp = {"senders": senders, "k": 0, "samples": samples, "lat": [], "gap": gap,
                   "target": None, "t0": None, "timer": None}
        self._pingpong_next()

    def _pingpong_next(self):
        pp = self.pp
        if pp["k"] >= pp["samples"]:
            self.pp = None
            emit("pingpong_done", latencies=pp["lat"])
            return
        s = pp["senders"][pp["k"] % len(pp["senders"])]
        pp["target"] = s.partner
        pp["t0"] = now()
        pp["timer"] = reactor.callLater(10, self._pingpong_timeout)
        s.send_relay()

    def _pingpong_got(self, t):
        pp = self.pp
        if pp["timer"] is not None and pp["timer"].active():
            pp["timer"].cancel()
        pp["lat"].append(t - pp["t0"])
        pp["k"] += 1
        pp["target"] = None
        reactor.callLater(pp["gap"], self._pingpong_next)

    def _pingpong_timeout(self):
        pp, self.pp = self.pp, None
        emit("error", error=f"pingpong sample {pp['k']} not delivered within 10 s "
                            f"(refused so far: {self.relay_refused})")

    # -- the stream ceiling -------------------------------------------------------------
    def cmd_stream(self, count, size, window=256, **_):
        """Connection 0 sends ``count`` MESSAGE frames of ``size`` body bytes, at most
        ``window`` unacknowledged; ``stream_done`` when the last is acknowledged."""
        p = self.conns[0]
        filler = b"m" * (size - 8)
        self.stream = {"p": p, "count": count, "sent": 0, "acked": 0, "window": window,
                       "t_first": now(), "filler": filler}
        self._stream_pump()

    def _stream_pump(self):
        s = self.stream
        out = []
        while s["sent"] < s["count"] and s["sent"] - s["acked"] < s["window"]:
            s["sent"] += 1
            out.append(ceiling_frame(23, struct.pack(">Q", s["sent"]) + s["filler"]))
        if out:
            s["p"].transport.writeSequence(out)

    def stream_acked(self, proto, t):
        s = self.stream
        if s is None:
            return
        s["acked"] += 1
        if s["acked"] >= s["count"]:
            self.stream = None
            emit("stream_done", t_first=s["t_first"], t_last=t, n=s["acked"])
        elif s["sent"] - s["acked"] <= s["window"] // 2:
            self._stream_pump()

    # -- closing --------------------------------------------------------------------------
    def cmd_close(self, timeout=20.0, **_):
        live = [p for p in self.conns if not getattr(p, "bench_lost", False)]
        self._closing = {"left": len(live),
                         "timer": reactor.callLater(timeout, self._closed)}
        for p in live:
            p.close_now()
        if not live:
            self._closed()

    def _closed(self):
        c, self._closing = self._closing, None
        if c is None:
            return
        if c["timer"].active():
            c["timer"].cancel()
        for p in self.conns:
            if not getattr(p, "bench_lost", False) and p.transport is not None:
                try:
                    p.transport.abortConnection()
                except Exception:
                    pass
        self.conns = []
        self.updates.clear()
        self.update_expect.clear()
        self.errors, self.error_count = [], 0
        emit("closed", left=c["left"])

    def cmd_sizes(self, **_):
        emit("sizes", **self.sizes)




def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lifetime", type=float, default=1800.0)
    args = p.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    worker = Worker()
    serve(worker)
    reactor.callLater(args.lifetime, reactor.stop)
    reactor.callWhenRunning(emit, "ready", pid=os.getpid())
    reactor.run()


if __name__ == "__main__":
    main()
