"""Signed presence heads (blockhub/heads.py): the commitment, the chain, what two heads
that cannot be on one chain are, and the proof checker, fuzzed."""

import copy
import json
import random

from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import ProtocolError
from blockhub.heads import (
    SetEncoder,
    check_proof,
    conflict,
    make_head,
    proof_document,
    set_commitment,
    verify_head,
)
from blockhub.hubinfo import make_hubinfo
from tests.helpers import run_cli
from tests.memory import new_identity

G, OTHER, A, B = (new_identity() for _ in range(4))
INFO_A = make_hubinfo(A, "a", 1).to_json()
INFO_B = make_hubinfo(B, "b", 1).to_json()


def chain(identity, sets):
    """Heads 1.. over ``sets`` of HubInfo, each naming the one before."""
    out, prev = [], None
    for n, hubs in enumerate(sets, 1):
        head = make_head(identity, n, 1000 * n, len(hubs), set_commitment(hubs), prev)
        out.append(head)
        prev = head.hash
    return out


class HeadTests(SynchronousTestCase):
    def test_a_chain_has_no_conflict_and_survives_the_wire(self):
        heads = chain(G, [[], [INFO_A], [INFO_A, INFO_B], [INFO_B]])
        for x in heads:
            self.assertEqual(verify_head(x.to_json()), x)
            for y in heads:
                self.assertIsNone(conflict(x, y))

    def test_the_commitment_is_the_set_not_the_order(self):
        self.assertEqual(set_commitment([INFO_A, INFO_B]), set_commitment([INFO_B, INFO_A]))
        self.assertNotEqual(set_commitment([INFO_A]), set_commitment([INFO_A, INFO_B]))
        later = make_hubinfo(A, "a", 2).to_json()  # a new HubInfo of the same hub
        self.assertNotEqual(set_commitment([INFO_A]), set_commitment([later]))

    def test_the_encoder_keeps_bytes_only_while_a_hubinfo_stays(self):
        a, b, a2 = make_hubinfo(A, "a", 1), make_hubinfo(B, "b", 1), make_hubinfo(A, "a", 2)
        encoder = SetEncoder()
        for infos in ([a], [a, b], [b, a], [a2, b], [], [b]):
            self.assertEqual(encoder.commitment(infos),
                             set_commitment([i.to_json() for i in infos]))

    def test_a_fork_at_one_seq_or_a_broken_link_is_a_conflict(self):
        one = chain(G, [[], [INFO_A]])
        two = chain(G, [[], [INFO_B]])
        self.assertEqual(conflict(one[1], two[1]), "two different heads 2")
        orphan = make_head(G, 3, 3000, 0, set_commitment([]), two[1].hash)
        self.assertEqual(conflict(one[1], orphan), "head 3 does not follow head 2")
        self.assertIsNone(conflict(one[0], orphan))  # not adjacent: no proof alone
        elsewhere = chain(OTHER, [[], [INFO_B]])
        self.assertIsNone(conflict(one[1], elsewhere[1]))

    def test_a_head_that_is_malformed_or_not_its_gateways_is_refused(self):
        [head] = chain(G, [[]])
        value = head.to_json()
        for change in (lambda v: v["body"].update(seq=0), lambda v: v["body"].pop("set"),
                       lambda v: v["body"].update(gateway=OTHER.id),
                       lambda v: v["body"].update(count=5)):
            bad = copy.deepcopy(value)
            change(bad)
            self.assertRaises(ProtocolError, verify_head, bad)
        self.assertRaises(ProtocolError, make_head, G, 2, 0, 0, b"\0" * 32, None)


class ProofTests(SynchronousTestCase):
    def setUp(self):
        self.one, self.two = chain(G, [[], [INFO_A]]), chain(G, [[], [INFO_B]])
        self.proof = proof_document(self.one[1], self.two[1], "two different heads 2")

    def test_a_proof_checks_and_says_why(self):
        self.assertEqual(check_proof(self.proof),
                         f"gateway {G.id} equivocated: two different heads 2")

    def test_heads_that_can_be_on_one_chain_are_no_proof(self):
        self.assertRaises(ProtocolError, check_proof,
                          proof_document(self.one[0], self.one[1], ""))
        self.assertRaises(ProtocolError, check_proof,
                          proof_document(self.one[1], self.one[1], ""))

    def test_random_damage_is_refused_with_protocol_error_only(self):
        """Bounded fuzz: a proof with any field changed or dropped is refused (never
        another exception), unless the change left both heads as they were."""
        rng = random.Random(5)
        junk = [None, 0, -1, 2**60, "", "x" * 70, [], {}, True, "AAAA", G.id]
        for _ in range(3000):
            doc = copy.deepcopy(self.proof)
            target = doc
            path = rng.choice([["kind"], ["heads"], ["heads", 0], ["heads", 1, "sig"],
                               ["heads", 0, "body", "seq"], ["heads", 1, "body", "set"],
                               ["heads", 0, "signer"], ["heads", 1, "body"],
                               ["heads", 0, "body", "prev"], ["heads", 1, "kind"]])
            for key in path[:-1]:
                target = target[key]
            if rng.random() < 0.3 and isinstance(target, dict):
                target.pop(path[-1], None)
            else:
                target[path[-1]] = rng.choice(junk)
            try:
                check_proof(doc)
            except ProtocolError:
                continue
            self.assertEqual(doc["heads"], self.proof["heads"])


class VerifyEquivocationCommandTests(SynchronousTestCase):
    def write(self, value):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(value if isinstance(value, str) else json.dumps(value))
        return path

    def test_exit_0_for_a_proof_and_1_with_one_line_otherwise(self):
        one, two = chain(G, [[], [INFO_A]]), chain(G, [[], [INFO_B]])
        code, out, err = run_cli("verify-equivocation", self.write(
            proof_document(one[1], two[1], "two different heads 2")))
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.strip(), f"valid proof: gateway {G.id} equivocated: "
                                      "two different heads 2")
        for bad in (proof_document(one[0], one[1], ""), "{not json", {"kind": "other"}):
            code, out, err = run_cli("verify-equivocation", self.write(bad))
            self.assertEqual((code, out), (1, ""))
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        code, out, err = run_cli("verify-equivocation", "/nonexistent/proof.json")
        self.assertEqual(code, 1)
