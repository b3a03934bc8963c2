"""Real blockhub daemons in the lab: the integration harness (tests/integration/
harness.py), with every daemon started inside the namespace of the lab host that has
its name, and the few things lab scenarios do with them.

The harness does the rest exactly as for the tests on 127.0.0.1: identities made with
``blockhub init`` in a temporary key ring, daemons run with ``twistd -n`` from the
source tree, logs in the network's root, polls with deadlines, daemons stopped at the
end of the test (before the lab removes the namespaces).  The control socket is a file,
so the CLI reaches a daemon from outside its namespace; commands a user types run on
the daemon's own host (``blockhub_on``).
"""

import concurrent.futures
import itertools
import json
import subprocess

from tests.integration import harness
from tests.integration.harness import BLOCKHUB, CLIError, Daemon, wait_for
from tests.integration.test_handshake import peer_row

GATEWAY_PORT = 6610


class LabNetwork(harness.Network):
    """A harness network whose daemon for identity NAME runs on lab host NAME."""

    def __init__(self, case, lab):
        self.lab = lab
        super().__init__(case)

    def _daemon(self, role, identity, options) -> Daemon:
        daemon = super()._daemon(role, identity, options)
        daemon.argv[:0] = self.lab.exec_prefix(identity.name)
        return daemon

    def listen(self, name: str, port: int = 0) -> str:
        """A listen endpoint on the host's own address (peers must reach it there)."""
        return f"tcp:{port}:interface={self.lab.address(name)}"

    def lab_gateway(self, identity, *options) -> Daemon:
        return self.gateway(identity, *options,
                            listen=self.listen(identity.name, GATEWAY_PORT))

    def spec(self, gateway: Daemon) -> str:
        """``ID@ADDRESS:PORT`` of a lab gateway, as a hub's ``--gateway`` wants it: the
        hub pins the gateway's key."""
        return f"{gateway.id}@{self.lab.address(gateway.name)}:{gateway.port}"

    def lab_hubs(self, gateway: Daemon, specs) -> list[Daemon]:
        """Start hubs at once, each listening on its host's address: ``specs`` is a list
        of ``(identity, [options])``; wait until every one answers."""
        return self.hubs_each([(identity, ["--listen", self.listen(identity.name),
                                           *options]) for identity, options in specs],
                              gateways=[self.spec(gateway)])

    def blockhub_on(self, daemon: Daemon, *args, check: bool = True):
        """``blockhub ARGS --data-dir DIR`` run on the daemon's host, as its user would."""
        argv = [*self.lab.exec_prefix(daemon.name), BLOCKHUB, *map(str, args),
                "--data-dir", daemon.data_dir]
        done = subprocess.run(argv, env=self.env, cwd=self.root, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise CLIError(args, done.returncode, done.stdout, done.stderr)
        return done

    def json_on(self, daemon: Daemon, *args):
        """The parsed ``--json`` answer of a command run on the daemon's host."""
        return json.loads(self.blockhub_on(daemon, *args, "--json").stdout)

    def json_on_each(self, commands) -> dict:
        """``json_on`` for each ``(daemon, [args])`` at once (each CLI start costs most
        of a second); the answers by daemon name."""
        with concurrent.futures.ThreadPoolExecutor(len(commands)) as pool:
            futures = {d.name: pool.submit(self.json_on, d, *args) for d, args in commands}
        return {name: future.result() for name, future in futures.items()}


def connected(x: Daemon, y: Daemon) -> bool:
    """``x`` lists ``y`` as a connected peer."""
    return bool((peer_row(x, y.id) or {}).get("connected"))


def wait_peered(x: Daemon, y: Daemon, timeout: float, logs=()) -> None:
    """Until each of ``x`` and ``y`` lists the other as a connected peer."""
    wait_for(lambda: connected(x, y) and connected(y, x), timeout,
             f"{x.name} and {y.name} to list each other as connected peers",
             logs=[x, y, *logs])


_runs = itertools.count(1)


def paths(x: Daemon, y: Daemon) -> tuple:
    """How each side lists the peering: ``(x's row for y, y's row for x)``."""
    return peer_row(x, y.id), peer_row(y, x.id)


class Ledger:
    """Every message a scenario sends between hubs, kept to check at the end that each
    receiver holds exactly those of each sender, every one once and in the order sent,
    and that every sender saw them acknowledged.  It spans restarts: inboxes and
    outboxes are on disk, and a restarted daemon keeps its ``Daemon``.  Texts carry a
    tag of this ledger, so messages of another ledger do not count."""

    def __init__(self):
        self.tag = f"x{next(_runs)}"
        self.sent: dict[tuple[Daemon, Daemon], list[str]] = {}

    def send(self, sender: Daemon, receiver: Daemon, count: int = 1,
             phase: str = "") -> None:
        """``blockhub send`` ``count`` messages (through the control socket, which
        answers once each is committed to the sender's outbox)."""
        texts = self.sent.setdefault((sender, receiver), [])
        for _ in range(count):
            text = f"{self.tag} {sender.name}->{receiver.name} {phase}{len(texts):03d}"
            sender.ctl("send", receiver.id, text, as_json=False)
            texts.append(text)

    def received(self, hub: Daemon, sender: Daemon) -> list[str]:
        return [m["text"] for m in hub.ctl("messages")
                if m["from"] == sender.id and m["text"].startswith(self.tag + " ")]

    def check(self, timeout: float = 30.0, logs=()) -> None:
        """Wait until every receiver holds as many as were sent and every sender has
        them acknowledged, then compare exactly."""
        everyone = list(dict.fromkeys([d for pair in self.sent for d in pair] + list(logs)))
        for (sender, hub), texts in self.sent.items():
            wait_for(lambda hub=hub, sender=sender, texts=texts:
                     len(self.received(hub, sender)) >= len(texts), timeout,
                     f"{hub.name} to hold {len(texts)} messages from {sender.name}",
                     logs=everyone)
        for sender, hub in self.sent:
            wait_for(lambda hub=hub, sender=sender:
                     peer_row(sender, hub.id)["unacked"] == 0, timeout,
                     f"{sender.name} to see its messages to {hub.name} acknowledged",
                     logs=everyone)
        for (sender, hub), texts in self.sent.items():  # all acked: nothing is on its way
            got = self.received(hub, sender)
            if got != texts:
                missing = [t for t in texts if t not in got]
                doubled = sorted({t for t in got if got.count(t) > 1})
                raise AssertionError(
                    f"{hub.name} holds {len(got)} messages from {sender.name}, not the "
                    f"{len(texts)} sent, each once, in order; missing {missing}, "
                    f"doubled {doubled}, got {got}")


def exchange(x: Daemon, y: Daemon, count: int = 100, timeout: float = 30.0,
             logs=()) -> None:
    """Send ``count`` messages each way between peers ``x`` and ``y``, interleaved, and
    check that each receives the other's, every one exactly once and in order, and that
    every one is acknowledged (a ``Ledger`` of its own)."""
    ledger = Ledger()
    for _ in range(count):
        ledger.send(x, y)
        ledger.send(y, x)
    ledger.check(timeout, logs)


def nat_pair(case, lab, kind_a: str, kind_b: str | None, timeout: float = 10.0,
             approve: bool = True):
    """A gateway, alice behind a NAT of ``kind_a`` and bob behind one of ``kind_b``
    (None: alice's own router), approving each other (unless not ``approve``), both
    online; returns (net, gw, alice, bob).  ``case`` gets the network's cleanup."""
    lab.add_nat("home1", kind=kind_a)
    if kind_b is not None:
        lab.add_nat("home2", kind=kind_b)
    lab.add_host("gw")
    lab.add_host("alice", behind="home1")
    lab.add_host("bob", behind="home2" if kind_b else "home1")
    net = LabNetwork(case, lab)
    g, a, b = net.identities("gw", "alice", "bob")
    gw = net.lab_gateway(g)
    alice, bob = net.lab_hubs(gw, [(a, ["--approve-key", b.id] if approve else []),
                                   (b, ["--approve-key", a.id] if approve else [])])
    for hub in (alice, bob):
        wait_for(lambda hub=hub: hub.status()["endpoint"], timeout,
                 f"{hub.name} to be online", logs=[hub, gw])
    return net, gw, alice, bob
