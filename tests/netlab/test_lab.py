"""The lab itself, before any blockhub daemon: hosts behind a NAT reach the internet
through their router, the routers map ports as their kind says, an unsolicited
connection from outside times out at the router (dropped, not refused), and two hosts
behind one router cannot reach each other through its public address (no hairpin).
A tiny TCP probe (probe.py) plays both ends and tells what address it saw."""

import concurrent.futures
import json
import os
import select
import subprocess
import sys

from tests.netlab.case import LabCase, suite_of

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")
PORT = 7000
KNOCK_TIMEOUT = 1.0  # long enough for a LAN answer by far, short for the suite


class ProbeCase(LabCase):
    """Starting probe servers on lab hosts and connecting to them."""

    def serve(self, host: str, port: int = PORT) -> subprocess.Popen:
        proc = self.lab.popen(host, [sys.executable, PROBE, "serve", self.lab.address(host),
                                     port, 30], stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.stdout.close)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        self.assertEqual(proc.stdout.readline() if ready else "", "ready\n")
        return proc

    def accepted(self, server: subprocess.Popen) -> list[str]:
        """Stop the server; the addresses it accepted connections from."""
        server.terminate()
        out, _ = server.communicate(timeout=10)
        return [" ".join(line.split()[1:]) for line in out.splitlines()
                if line.startswith("accepted ")]

    def connect(self, host: str, to: str, port: int = PORT, from_port: int = 0,
                timeout: float = 2.0) -> dict:
        done = self.lab.run(host, [sys.executable, PROBE, "connect", self.lab.address(to),
                                   port, from_port, timeout], timeout=timeout + 10)
        return json.loads(done.stdout)

    def connect_all(self, attempts) -> list[dict]:
        """``connect`` for each ``(host, to, keywords)`` at once (timeouts overlap)."""
        with concurrent.futures.ThreadPoolExecutor(len(attempts)) as pool:
            futures = [pool.submit(self.connect, host, to, **kw) for host, to, kw in attempts]
        return [future.result() for future in futures]


class LabNetworkTests(ProbeCase):

    def build(self):
        lab = self.lab
        lab.add_nat("home1", kind="cone")
        lab.add_nat("home2", kind="symmetric")
        lab.add_host("gw")
        lab.add_host("other")
        lab.add_host("alice", behind="home1")
        lab.add_host("bob", behind="home2")
        return lab

    def test_hosts_behind_nats_reach_the_gateway_from_their_routers_addresses(self):
        """Both reach the gateway's address.  The cone router keeps alice's source port,
        for one destination and the next (one mapping); the symmetric router gives bob a
        port of its own for each destination."""
        lab = self.build()
        for host in ("gw", "other"):
            self.serve(host)
        seen = {}
        for host, local in (("alice", 40001), ("bob", 40002)):
            for to in ("gw", "other"):
                answer = self.connect(host, to, from_port=local)
                self.assertEqual(answer["result"], "ok", (host, to, answer))
                address, _, port = answer["seen"].rpartition(":")
                self.assertEqual(address, lab.public_address(host), answer)
                seen[host, to] = int(port)
        self.assertEqual((seen["alice", "gw"], seen["alice", "other"]), (40001, 40001))
        self.assertNotIn(seen["bob", "gw"], (40002, seen["bob", "other"]), seen)
        self.assertNotEqual(seen["bob", "other"], 40002, seen)

    def test_unsolicited_connections_from_outside_time_out_at_the_router(self):
        """A public host knocks on each router's public address and, routing the home
        network through the router, on the hidden host itself: every attempt times
        out, nothing arrives.  The same knock on a public port with no listener is
        refused at once, so the timeouts are the routers' doing."""
        lab = self.build()
        lab.add_route("other", "10.1.0.0/24", via="home1")
        lab.add_route("other", "10.2.0.0/24", via="home2")
        servers = {host: self.serve(host) for host in ("alice", "bob")}
        knock = {"timeout": KNOCK_TIMEOUT}
        answers = self.connect_all([("other", "home1", knock), ("other", "alice", knock),
                                    ("other", "home2", knock), ("other", "bob", knock),
                                    ("other", "gw", knock)])
        self.assertEqual([a["result"] for a in answers],
                         ["timeout", "timeout", "timeout", "timeout", "refused"], answers)
        for host, server in servers.items():
            self.assertEqual(self.accepted(server), [], host)

    def test_no_hairpin_between_two_hosts_behind_one_router(self):
        """carol and dave share a router: carol reaches dave at his own address on their
        home network, not through the router's public address."""
        lab = self.lab
        lab.add_nat("home", kind="cone")
        lab.add_host("carol", behind="home")
        lab.add_host("dave", behind="home")
        server = self.serve("dave")
        through_router = self.connect("carol", "home", timeout=KNOCK_TIMEOUT)
        self.assertNotEqual(through_router["result"], "ok", through_router)
        direct = self.connect("carol", "dave")
        self.assertEqual(direct["result"], "ok", direct)
        self.assertEqual(direct["seen"].rpartition(":")[0], lab.address("carol"), direct)
        self.assertEqual(self.accepted(server), [direct["seen"].replace(":", " ")])


testSuite = suite_of(__name__)
