"""The hub's peer listener under a flood, with real processes: connections that never
start TLS and connections that finish TLS and then only wait are capped and dropped,
while an established peer keeps exchanging messages and the control socket answers
(security review #4)."""

import socket
import ssl

from OpenSSL import crypto
from twisted.trial.unittest import SynchronousTestCase

from blockhub.identity import Identity, new_phrase
from blockhub.net.tls import certificate_for
from blockhub.wire import messages
from blockhub.wire.framing import FrameDecoder
from tests.integration.harness import (
    LISTEN_ANY_PORT,
    LOOPBACK,
    Network,
    tail,
    wait_for,
    wait_lists,
)

LISTEN = ("--listen", LISTEN_ANY_PORT)


def connected(hub, peer_id):
    return any(p["id"] == peer_id and p["connected"] for p in hub.ctl("peers"))


def closed_by_server(sock, timeout=0.5) -> bool:
    """True when the server has closed (or reset) ``sock``."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError, OSError) as e:
        return not isinstance(e, TimeoutError)


class ListenerFloodTests(SynchronousTestCase):
    def setUp(self):
        self.net = Network(self)
        self.sockets = []
        self.addCleanup(lambda: [s.close() for s in self.sockets])

    def tls_context(self):
        """A client context with any Ed25519 certificate: all the listener asks for."""
        cert, key = certificate_for(Identity.from_phrase(new_phrase()))
        path = self.net.path("silent.pem")
        with open(path, "wb") as f:
            f.write(crypto.dump_certificate(crypto.FILETYPE_PEM, cert))
            f.write(crypto.dump_privatekey(crypto.FILETYPE_PEM, key))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(path)
        return ctx

    def dial(self, port, ctx=None):
        sock = socket.create_connection((LOOPBACK, port), timeout=5)
        if ctx is not None:
            sock = ctx.wrap_socket(sock)
        self.sockets.append(sock)
        return sock

    def dial_dropped(self, port):
        """A plain TCP connection, or None when the hub's abort of it came back before
        the connect call did (a loaded machine): dropped either way."""
        try:
            return self.dial(port)
        except ConnectionResetError:
            return None

    def test_flood_of_unopened_connections(self):
        g, a, b = self.net.identities("gw", "alpha", "bravo")
        gw = self.net.gateway(g)
        alpha, bravo = self.net.hubs_each(
            [(a, LISTEN), (b, [*LISTEN, "--approve-key", a.id, "--max-unopened-per-ip", "4",
                               "--max-unopened", "8", "--first-frame-timeout", "2"])],
            gateways=[gw])
        wait_lists(gw, {a.id, b.id})
        self.net.blockhub("connect", "--data-dir", alpha.data_dir, b.id)
        wait_for(lambda: connected(alpha, b.id), what="the peer link", logs=[alpha, bravo])
        port = int(bravo.status()["listen"].rpartition(":")[2])

        # Plain TCP that never starts TLS: four are held, the rest are dropped at once.
        raw = [self.dial_dropped(port) for _ in range(40)]
        dropped = [s is None or closed_by_server(s) for s in raw]
        self.assertEqual(dropped.count(False), 4, dropped)

        # The established peer and the control socket work meanwhile.
        self.net.blockhub("send", "--data-dir", alpha.data_dir, b.id, "during the flood")
        wait_for(lambda: [m["text"] for m in bravo.ctl("messages")] == ["during the flood"],
                 what="the message during the flood", logs=[alpha, bravo])
        self.assertTrue(connected(bravo, a.id))
        for s in raw:
            if s is not None:
                s.close()

        # TLS done, then nothing but waiting: told why and dropped at the deadline.
        ctx = self.tls_context()
        wait_for(lambda: self.try_tls(port, ctx), what="room for a TLS client",
                 logs=[bravo])
        silent = self.sockets[-1]
        silent.settimeout(10)  # a deadline that never fires fails the test here
        data = b""
        while True:
            chunk = silent.recv(65536)
            if not chunk:
                break
            data += chunk
        frames = [messages.decode(code, body) for code, body in FrameDecoder().feed(data)]
        errors = [m["reason"] for m in frames if m.kind == "error"]
        self.assertEqual(errors, ["no peer-hello or peer-request within 2s of TLS"])
        log = tail(bravo.log, 400)
        self.assertIn("too many unopened peer connections (TooManyFromAddress)", log)
        self.assertTrue(connected(alpha, b.id))
        status = wait_for(lambda: (lambda s: s["peer_listener"]["unopened"] == 0 and s)(
            bravo.status()), what="bravo to hold no unopened connection", logs=[bravo])
        self.assertEqual(status["refusals"]["TooManyFromAddress"], 36)
        self.assertEqual(status["refusals"]["FirstFrameTimeout"], 1)

    def try_tls(self, port, ctx):
        try:
            self.dial(port, ctx)
            return True
        except (ssl.SSLError, OSError):
            return False
