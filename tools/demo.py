"""``make demo``: blockhub end to end on loopback, in a temporary directory.

A gateway and two hubs run as real twistd processes on ports the OS chooses.  The hubs
see each other through the gateway, alice asks bob to connect, bob's operator approves,
bob dials alice directly, and they exchange messages.  Then carol peers with alice over
a relay circuit, and dave connects to bob with an invite code, nobody approving.
Last, the gateway commits to a next key and rotates to it, and every hub follows.
Everything is stopped and removed at the end, also on error or Ctrl-C.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Demo:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="bh-demo-")
        self.env = dict(os.environ, BLOCKHUB_KEYRING=os.path.join(self.root, "keyring"))
        self.procs = {}

    def path(self, name):
        return os.path.join(self.root, name)

    def blockhub(self, *args, check=True):
        done = subprocess.run([os.path.join(BIN, "blockhub"), *map(str, args)],
                              env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise SystemExit(f"demo: blockhub {' '.join(map(str, args[:2]))} failed: "
                             f"{done.stderr.strip()}")
        return done.stdout

    def query(self, name, what):
        return json.loads(self.blockhub(what, "--data-dir", self.path(name), "--json"))

    def query_invites(self, name):
        return json.loads(self.blockhub("invite", "list", "--data-dir", self.path(name),
                                        "--json"))

    def start(self, name, role, *options):
        log = open(self.path(f"{name}.log"), "w")
        self.procs[name] = subprocess.Popen(
            [os.path.join(BIN, "twistd"), "-n", f"blockhub-{role}", "--data-dir",
             self.path(name), *options], cwd=self.root, env=self.env, stdout=log,
            stderr=subprocess.STDOUT)
        self.wait(f"{name} to start", lambda: self.blockhub(
            "status", "--data-dir", self.path(name), check=False) != "", name=name)

    def wait(self, what, predicate, timeout=20.0, name=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if name and self.procs[name].poll() is not None:
                raise SystemExit(f"demo: {name} exited; see {self.path(name + '.log')}:\n"
                                 + open(self.path(name + ".log")).read()[-2000:])
            try:
                if predicate():
                    return
            except SystemExit:
                pass
            time.sleep(0.1)
        raise SystemExit(f"demo: timed out waiting for {what}")

    def stop_all(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def say(text=""):
    print(text, flush=True)


def run(demo: Demo):
    say(f"== blockhub demo in {demo.root}\n")
    ids = {}
    for name in ("gateway", "alice", "bob", "carol", "dave"):
        demo.blockhub("init", "--data-dir", demo.path(name), "--name", name)
        ids[name] = demo.blockhub("id", "--data-dir", demo.path(name)).strip()
        say(f"   blockhub init --data-dir {name}   -> id {ids[name]}")
    say("   (each recovery phrase is sealed on disk under the key ring)\n")

    demo.start("gateway", "gateway", "--listen", "tcp:0:interface=127.0.0.1")
    address = demo.query("gateway", "status")["listen"]
    say(f"1. gateway listening on {address} in private mode (no hub address is shared)")
    gateway = f"{ids['gateway']}@{address}"
    for name in ("alice", "bob"):
        demo.start(name, "hub", "--gateway", gateway, "--listen", "tcp:0:interface=127.0.0.1")
    demo.wait("the hubs to see each other",
              lambda: len(demo.query("alice", "hubs")) == 1 and len(demo.query("bob", "hubs")) == 1)
    for name in ("alice", "bob"):
        gw = demo.query(name, "status")["gateways"][0]
        others = [(h["name"], h["endpoint"]) for h in demo.query(name, "hubs")]
        say(f"2. {name}: gateway {gw['state']} (its key pinned in TLS); sees {others}")

    say("\n3. alice asks bob to connect (signed by alice, sealed to bob, relayed blindly)")
    say("   " + demo.blockhub("connect", "--data-dir", demo.path("alice"), ids["bob"],
                             "--note", "hello from alice").strip())
    demo.wait("bob's pending request", lambda: demo.query("bob", "pending"))
    pending = demo.query("bob", "pending")[0]
    say(f"4. bob's operator sees a pending request from {pending['id'][:16]}…, "
        f"note {pending['note']!r}")
    say("   " + demo.blockhub("approve", "--data-dir", demo.path("bob"), ids["alice"]).strip())
    demo.wait("the direct peer link",
              lambda: any(p["connected"] for p in demo.query("alice", "peers")))
    peer = demo.query("bob", "peers")[0]
    say(f"5. bob dialed alice directly at {peer['address']} over key-pinned TLS: connected\n")

    demo.blockhub("send", "--data-dir", demo.path("alice"), ids["bob"], "Hi Bob, it's Alice.")
    demo.blockhub("send", "--data-dir", demo.path("bob"), ids["alice"], "Hi Alice! Got you.")
    demo.wait("the messages", lambda: demo.query("bob", "messages")
              and demo.query("alice", "messages"))
    for name in ("bob", "alice"):
        for m in demo.query(name, "messages"):
            sender = "alice" if m["from"] == ids["alice"] else "bob"
            say(f"6. {name} received from {sender}: {m['text']!r} (stored, then acknowledged)")
    requests = demo.query("alice", "status")["requests"]
    say(f"\n   alice's request to bob ended in state: {requests[0]['state']}")
    relayed(demo, ids, gateway)
    invited(demo, ids, gateway)
    rotated(demo, ids)


def relayed(demo: Demo, ids: dict, gateway: str) -> None:
    """carol never dials and never listens: her peering with alice runs over a relay
    circuit through the gateway, which carries only the TLS inside it."""
    say("\n7. carol starts with --peer-path relay (no --listen: no peer learns her address)")
    demo.start("carol", "hub", "--gateway", gateway, "--peer-path", "relay")
    demo.wait("carol online", lambda: len(demo.query("carol", "hubs")) == 2)
    say("   " + demo.blockhub("connect", "--data-dir", demo.path("carol"), ids["alice"],
                             "--note", "hello from carol").strip())
    demo.wait("alice's pending request from carol",
              lambda: any(p["id"] == ids["carol"] for p in demo.query("alice", "pending")))
    demo.blockhub("approve", "--data-dir", demo.path("alice"), ids["carol"])
    demo.wait("the relayed peer link", lambda: any(
        p["id"] == ids["carol"] and p["connected"] for p in demo.query("alice", "peers")))
    peer = [p for p in demo.query("alice", "peers") if p["id"] == ids["carol"]][0]
    say(f"8. alice and carol are peers, path {peer['path']} via the gateway "
        f"{(peer['via'] or '')[:16]}…, address {peer['address']}")
    demo.blockhub("send", "--data-dir", demo.path("carol"), ids["alice"], "Hi Alice, from behind.")
    demo.wait("carol's message", lambda: any(
        m["from"] == ids["carol"] for m in demo.query("alice", "messages")))
    circuits = demo.query("carol", "status")["circuits"]
    say(f"9. alice received carol's message over the circuit; carol's circuits: "
        f"{circuits['count']} open, {circuits['bytes']} bytes of TLS carried")


def invited(demo: Demo, ids: dict, gateway: str) -> None:
    """bob makes an invite code; dave, who has only that code, connects with it and is
    accepted at once."""
    made = json.loads(demo.blockhub("invite", "create", "--data-dir", demo.path("bob"),
                                    "--note", "for dave", "--json"))
    say(f"\n10. bob makes an invite (one use, 24 h): {made['code'][:24]}… "
        f"(the code names bob and his gateway, and holds a secret)")
    demo.start("dave", "hub", "--gateway", gateway, "--listen", "tcp:0:interface=127.0.0.1")
    for line in demo.blockhub("connect", "--data-dir", demo.path("dave"), "--invite",
                              made["code"]).splitlines():
        say("    " + line)
    demo.wait("dave's invited peering", lambda: any(
        p["id"] == ids["bob"] and p["connected"] for p in demo.query("dave", "peers")))
    [row] = [r for r in demo.query("bob", "status")["requests"]
             if r["direction"] == "in" and r["peer"] == ids["dave"]]
    [invite] = demo.query_invites("bob")
    say(f"11. dave and bob are peers, accepted on the invite (how: {row['how']}), with "
        f"nobody approving; the invite is now {invite['state']}")


def rotated(demo: Demo, ids: dict) -> None:
    """The gateway commits to a key made apart, then moves to it while it runs; the hubs
    that heard the commitment follow, editing nothing."""
    hubs = ("alice", "bob", "carol", "dave")
    demo.blockhub("init", "--data-dir", demo.path("next"), "--name", "next")
    nxt = demo.blockhub("id", "--data-dir", demo.path("next")).strip()
    demo.blockhub("commit-next", "--data-dir", demo.path("gateway"), "--next", nxt)
    old = ids["gateway"]
    demo.wait("the hubs to hear the commitment", lambda: all(
        demo.query(n, "status")["gateway_keys"].get(old, {}).get("next_committed")
        for n in hubs))
    say(f"\n12. the gateway commits to its next key {nxt[:16]}… (made apart; only its "
        "digest is published): every hub keeps it")
    demo.blockhub("rotate-key", "--data-dir", demo.path("gateway"), "--next", demo.path("next"))
    demo.wait("the hubs to follow", lambda: all(
        demo.query(n, "status")["gateway"] == nxt for n in hubs), timeout=30)
    say(f"13. the gateway rotated to it while running; {', '.join(hubs)} checked the "
        "succession (signed by both keys, to the committed key) and pinned the new key")


def main(script=None):
    """Run ``script(demo)`` (the demo above, by default), then stop and remove it all."""
    demo = Demo()
    interrupted = False
    try:
        (script or run)(demo)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        demo.stop_all()
        shutil.rmtree(demo.root, ignore_errors=True)
    say("\n== demo finished; every process stopped and the temporary directory removed")
    if interrupted:
        sys.exit(130)


if __name__ == "__main__":
    main()
