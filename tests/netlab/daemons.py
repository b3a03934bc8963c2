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


def exchange(x: Daemon, y: Daemon, count: int = 100, timeout: float = 30.0,
             logs=()) -> None:
    """Send ``count`` messages each way between peers ``x`` and ``y`` (``blockhub send``
    through the control socket, interleaved) and check that each receives the other's,
    every one exactly once and in order, and that every one is acknowledged.  Texts carry
    a tag of this call, so messages of an earlier exchange do not count."""
    tag = f"x{next(_runs)}"
    texts = {x.id: [f"{tag} {x.name}->{y.name} {i:03d}" for i in range(count)],
             y.id: [f"{tag} {y.name}->{x.name} {i:03d}" for i in range(count)]}
    for i in range(count):
        for sender, receiver in ((x, y), (y, x)):
            sender.ctl("send", receiver.id, texts[sender.id][i], as_json=False)

    def received(hub: Daemon, sender: Daemon) -> list[str]:
        return [m["text"] for m in hub.ctl("messages")
                if m["from"] == sender.id and m["text"].startswith(tag + " ")]

    everyone = [x, y, *logs]
    for hub, sender in ((x, y), (y, x)):
        wait_for(lambda hub=hub, sender=sender: len(received(hub, sender)) >= count,
                 timeout, f"{hub.name} to hold {count} messages from {sender.name}",
                 logs=everyone)
    for hub, sender in ((x, y), (y, x)):
        wait_for(lambda hub=hub, sender=sender: peer_row(sender, hub.id)["unacked"] == 0,
                 timeout, f"{sender.name} to see its messages to {hub.name} acknowledged",
                 logs=everyone)
    for hub, sender in ((x, y), (y, x)):  # all acknowledged: nothing more is on its way
        got = received(hub, sender)
        if got != texts[sender.id]:
            raise AssertionError(f"{hub.name} got {len(got)} messages from {sender.name}, "
                                 f"not the {count} sent, each once, in order: {got}")
