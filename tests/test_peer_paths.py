"""Which way an established peering is tried first (``PeerPaths.attempt``), alone with
fakes: its stored address, unless it last ran over a circuit."""

from twisted.internet.defer import fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from blockhub.hub.peer_paths import PeerPaths

PEER = "bh-peer"


class Fakes:
    def __init__(self, row, direct_ok=True, circuit_ok=True):
        self.row, self.tried = row, []
        self.direct_ok, self.circuit_ok = direct_ok, circuit_ok

    # the store
    def peer(self, hub_id):
        return self.row

    # peers
    def hello_for(self, hub_id):
        return ("peer-hello", {})

    def open(self, hub_id, address, hello):
        self.tried.append(("direct", address))
        return "direct-proto", self._answer(self.direct_ok)

    # circuits
    def connect(self, hub_id, hello):
        self.tried.append(("circuit", None))
        return "circuit-proto", self._answer(self.circuit_ok)

    @staticmethod
    def _answer(ok):
        return succeed(("connected", "")) if ok else fail(ConnectionError("no route"))


class AttemptTests(SynchronousTestCase):
    def attempt(self, fakes):
        paths = PeerPaths(fakes, fakes, fakes)
        made = []
        return self.successResultOf(paths.attempt(PEER, made.append)), made

    def test_a_direct_peering_dials_its_address_first(self):
        fakes = Fakes({"address": "198.51.100.7:7001", "path": "direct"})
        self.assertEqual(self.attempt(fakes)[0], "direct-proto")
        self.assertEqual(fakes.tried, [("direct", "198.51.100.7:7001")])

    def test_a_relayed_peering_asks_for_a_circuit_first(self):
        fakes = Fakes({"address": "198.51.100.7:7001", "path": "relayed"})
        proto, made = self.attempt(fakes)
        self.assertEqual((proto, made), ("circuit-proto", ["circuit-proto"]))
        self.assertEqual(fakes.tried, [("circuit", None)])

    def test_each_falls_back_to_the_other_way(self):
        fakes = Fakes({"address": "198.51.100.7:7001", "path": "relayed"}, circuit_ok=False)
        self.assertEqual(self.attempt(fakes)[0], "direct-proto")
        self.assertEqual([way for way, _ in fakes.tried], ["circuit", "direct"])
        fakes = Fakes({"address": "198.51.100.7:7001", "path": "direct"}, direct_ok=False)
        self.assertEqual(self.attempt(fakes)[0], "circuit-proto")

    def test_an_answer_is_not_a_reason_to_try_the_other_way(self):
        fakes = Fakes({"address": "198.51.100.7:7001", "path": "direct"})
        fakes._answer = lambda ok: succeed(("rejected", "blocked"))
        paths = PeerPaths(fakes, fakes, fakes)
        self.failureResultOf(paths.attempt(PEER, lambda proto: None))
        self.assertEqual([way for way, _ in fakes.tried], ["direct"])
