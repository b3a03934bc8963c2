"""``make demo-cluster``: two gateway nodes sharing one Redis serve one network
(docs/cluster.md), on loopback, in a temporary directory.

A redis-server, two ``twistd blockhub-gateway --cluster`` nodes and two hubs, one at
each node: the hubs see each other across the nodes, alice asks bob to connect, bob
(relay-only: he never dials and never listens) approves, and their peering runs over a
relay circuit that crosses the two nodes.  Everything is stopped and removed at the
end, also on error or Ctrl-C.
"""

import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo import Demo, main, say  # noqa: E402  (tools/ is not a package)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(demo: Demo) -> str:
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if binary is None:
        raise SystemExit("demo-cluster: needs redis-server (apt-get install redis-server)")
    port = free_port()
    log = open(demo.path("redis.log"), "w")
    demo.procs["redis"] = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", demo.root], stdout=log, stderr=subprocess.STDOUT)

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False
    demo.wait("redis-server", answers, name="redis")
    return f"redis://127.0.0.1:{port}"


def run(demo: Demo):
    say(f"== blockhub cluster demo in {demo.root}\n")
    url = start_redis(demo)
    say(f"1. redis-server at {url} (no persistence; the nodes trust it for availability only)")
    ids = {}
    for name in ("node1", "node2", "alice", "bob"):
        demo.blockhub("init", "--data-dir", demo.path(name), "--name", name)
        ids[name] = demo.blockhub("id", "--data-dir", demo.path(name)).strip()
    keys = demo.path("cluster-keys")
    with open(keys, "w") as f:
        f.write(f"{ids['node1']}\n{ids['node2']}\n")
    cluster = ["--cluster", url, "--cluster-keys", keys, "--cluster-dead-after", "6"]
    gateways = {}
    for node in ("node1", "node2"):
        demo.start(node, "gateway", "--listen", "tcp:0:interface=127.0.0.1", *cluster)
        gateways[node] = f"{ids[node]}@{demo.query(node, 'status')['listen']}"
    demo.wait("both nodes to see the cluster", lambda: all(
        len(demo.query(n, "status").get("cluster", {}).get("nodes", [])) == 2
        for n in ("node1", "node2")))
    state = demo.query("node1", "status")["cluster"]
    say(f"2. two gateway nodes, each with its own key; node1 says the cluster "
        f"{state['name']!r} is {state['state']} with {len(state['nodes'])} nodes")

    demo.start("alice", "hub", "--gateway", gateways["node1"],
               "--listen", "tcp:0:interface=127.0.0.1")
    demo.start("bob", "hub", "--gateway", gateways["node2"], "--peer-path", "relay")
    demo.wait("the hubs to see each other across the nodes",
              lambda: len(demo.query("alice", "hubs")) == 1 and len(demo.query("bob", "hubs")) == 1)
    row = [h for h in demo.query("node1", "hubs") if h["id"] == ids["bob"]][0]
    say(f"3. alice is at node1, bob at node2; node1 lists bob at node {row['node'][:16]}… "
        f"and no address")

    say("\n4. alice asks bob to connect; the request crosses from node1 to node2")
    say("   " + demo.blockhub("connect", "--data-dir", demo.path("alice"), ids["bob"],
                             "--note", "hello across the cluster").strip())
    demo.wait("bob's pending request", lambda: demo.query("bob", "pending"))
    say("   " + demo.blockhub("approve", "--data-dir", demo.path("bob"), ids["alice"]).strip())
    demo.wait("the relayed peer link", lambda: any(
        p["connected"] for p in demo.query("alice", "peers")), timeout=30)
    peer = demo.query("alice", "peers")[0]
    say(f"5. alice and bob are peers, path {peer['path']} via {peer['via'][:16]}… "
        f"(bob is relay-only): the circuit crosses node1 and node2")

    demo.blockhub("send", "--data-dir", demo.path("alice"), ids["bob"], "Hi Bob, via two nodes.")
    demo.blockhub("send", "--data-dir", demo.path("bob"), ids["alice"], "Hi Alice! Got it.")
    demo.wait("the messages", lambda: demo.query("bob", "messages")
              and demo.query("alice", "messages"))
    for name in ("bob", "alice"):
        for m in demo.query(name, "messages"):
            say(f"6. {name} received {m['text']!r}")
    for node in ("node1", "node2"):
        circuits = demo.query(node, "status")["circuits"]
        say(f"   {node} carries {circuits['count']} circuit half, {circuits['bytes']} bytes "
            "of the hubs' TLS (Redis saw them sealed between the nodes' keys)")


if __name__ == "__main__":
    main(run)
