"""The NAT lab's builder: network namespaces joined by veth pairs into a small internet
and home networks behind nftables NAT routers, made with ``ip`` and ``nft`` as root.

The internet is one bridge (``br0``) in a namespace of its own, ``PREFIXinet``, on
198.18.0.0/24 (RFC 2544: never routed, so nothing here can leak to a real network).
Public hosts sit on it at 198.18.0.10 and up; NAT routers have their public side
(``wan0``) on it at 198.18.0.100 and up and their home network on a bridge ``lan0``,
10.K.0.1/24 for the K-th NAT, with its hosts at 10.K.0.10 and up.  A "cone" router
masquerades and keeps source ports where it can; a "symmetric" one masquerades with
random ports.  Both drop every packet from outside that does not belong to a connection
made from inside, as home routers do, so a connection attempt from outside times out
instead of being refused.  Nothing touches the host's own network.

Every namespace is named ``bhl<pid>-<n>-<name>``: parallel runs never collide, and
``sweep`` can remove what a killed run left by checking that its pid is gone.  A lab is
removed by ``close``, which every way out of the process reaches: the caller's cleanup,
``atexit`` after an uncaught exception, and SIGINT or SIGTERM (the handlers close every
open lab, then let the signal do what it did before; no lab can be built after one, so a
test runner that carries on after Ctrl-C gets through the other lab tests at once).
"""

import atexit
import ctypes
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

PREFIX = "bhl"
_OWNED = re.compile(rf"^{PREFIX}(\d+)-")
INTERNET = ipaddress.ip_network("198.18.0.0/24")
FIRST_PUBLIC_HOST, FIRST_ROUTER, FIRST_LAN_HOST = 10, 100, 10
NAT_KINDS = ("cone", "symmetric")
_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
COMMAND_TIMEOUT = 15.0
KILL_GRACE = 3.0
FORGET_UNANSWERED = 3  # seconds a router keeps a connection attempt nobody answered

# The router's rules.  Only what comes in on wan0 is filtered: replies to connections
# made from inside (and their ICMP errors) pass, everything else is dropped, not reset.
_RULES = """\
table inet bhlab {
    chain input {
        type filter hook input priority filter; policy accept;
        iifname "wan0" ct state established,related accept
        iifname "wan0" drop
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname "wan0" ct state established,related accept
        iifname "wan0" drop
    }
}
"""
_NAT = """\
table ip bhnat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan0" masquerade%s
    }
}
"""
_MASQUERADE = {"cone": "", "symmetric": " random"}


class LabError(Exception):
    """A command building or removing the lab failed; the message is one line."""


def run(argv, *, check: bool = True, input: str | None = None,
        timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a lab command; with ``check``, a non-zero exit raises ``LabError`` naming the
    command and its first line of stderr."""
    done = subprocess.run(argv, input=input, capture_output=True, text=True,
                          timeout=timeout, stdin=None if input is not None else
                          subprocess.DEVNULL)
    if check and done.returncode != 0:
        first = (done.stderr.strip() or done.stdout.strip()).splitlines()[:1]
        raise LabError(f"{' '.join(argv)} exited {done.returncode}: "
                       f"{first[0] if first else 'no output'}")
    return done


# -- namespaces and their processes ------------------------------------------------------
def list_namespaces() -> list[str]:
    """Every named network namespace on the machine (ours and anybody's)."""
    done = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def namespace_pids(ns: str) -> list[int]:
    done = run(["ip", "netns", "pids", ns], check=False)
    return [int(word) for word in done.stdout.split() if word.isdigit()]


def _signal_all(pids, sig) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie is dead, only not yet reaped
    by its parent, which may be a harness that reaps it later)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def remove_namespaces(names) -> None:
    """Stop every process inside ``names`` (SIGTERM, SIGKILL after ``KILL_GRACE`` s),
    then delete the namespaces; what is already gone is fine."""
    names = list(names)
    pids = {pid for ns in names for pid in namespace_pids(ns)} - {os.getpid()}
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_all([pid for pid in pids if _alive(pid)], signal.SIGKILL)
    for ns in names:
        run(["ip", "netns", "delete", ns], check=False)


def owned_namespaces() -> list[str]:
    """The namespaces named like the lab's, of any run."""
    return [ns for ns in list_namespaces() if _OWNED.match(ns)]


def sweep() -> list[str]:
    """Remove the lab namespaces of runs whose process is gone (a run killed with
    SIGKILL cannot clean up); return their names.  Live runs' labs are left alone."""
    stale = [ns for ns in owned_namespaces()
             if not _alive(int(_OWNED.match(ns).group(1)))]
    if stale:
        remove_namespaces(stale)
    return stale


# -- processes started in the lab --------------------------------------------------------
try:  # looked up now: between fork and exec the child should only make the call
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent():  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to kill the process if the lab's process dies first."""
    _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# -- the lab -----------------------------------------------------------------------------
class Node:
    """A namespace of the lab: a host, a NAT router or the internet itself."""

    def __init__(self, name: str, ns: str, kind: str, address: str | None,
                 behind: "Node | None" = None):
        self.name, self.ns, self.kind, self.address, self.behind = \
            name, ns, kind, address, behind
        self.lan: ipaddress.IPv4Network | None = None  # a router's home network
        self.ports = 0  # veth ports made on this node's bridge (internet or lan0)
        self.hosts = 0  # hosts placed behind a router

    def __repr__(self):
        return f"<{self.kind} {self.name} {self.ns} {self.address}>"


_counter = itertools.count(1)
_open: list = []  # labs not yet closed, for the exit and signal handlers
_handlers_installed = False
_interrupted: list = []  # the signals that closed every lab: no new lab after one


class Lab:
    """One lab: ``add_nat`` and ``add_host`` build as they are called; ``close`` removes
    every process and namespace.  Also a context manager."""

    def __init__(self):
        if _interrupted:  # trial goes on to the next test after Ctrl-C: end quickly
            raise KeyboardInterrupt(f"no new lab after signal {_interrupted[0]}")
        sweep()
        self.prefix = f"{PREFIX}{os.getpid()}-{next(_counter)}-"
        self.nodes: dict[str, Node] = {}
        self.created: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.closed = False
        self._nats = 0
        _open.append(self)
        _install_handlers()
        try:
            self.internet = self._namespace("inet", "internet", None)
            self._ip(self.internet, "link", "add", "br0", "type", "bridge")
            self._ip(self.internet, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- building ------------------------------------------------------------------------
    def add_nat(self, name: str, kind: str = "cone") -> Node:
        """A home router: public side on the internet, a home network behind it."""
        if kind not in NAT_KINDS:
            raise ValueError(f"a NAT is one of {NAT_KINDS}, not {kind!r}")
        self._nats += 1
        nat = self._namespace(name, kind, str(INTERNET[FIRST_ROUTER + self._nats - 1]))
        nat.lan = ipaddress.ip_network(f"10.{self._nats}.0.0/24")
        self._plug(self.internet, nat, "wan0")
        self._ip(nat, "link", "add", "lan0", "type", "bridge")
        self._ip(nat, "addr", "add", f"{nat.lan[1]}/24", "dev", "lan0")
        self._ip(nat, "link", "set", "lan0", "up")
        self.run(name, ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
        self.run(name, ["nft", "-f", "-"], input=_RULES + _NAT % _MASQUERADE[kind])
        # A retry from the same port to the same place keeps the mapping of an attempt
        # that is still unanswered (and does not renew it): like many home routers,
        # forget such attempts soon, not after Linux's 120 s.
        self.run(name, ["sh", "-c", f"echo {FORGET_UNANSWERED} > "
                        "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_syn_sent"])
        return nat

    def set_nat_kind(self, name: str, kind: str) -> None:
        """Make router ``name`` map new connections as a NAT of ``kind`` from now on;
        connections it mapped already keep their ports (and unanswered attempts, for
        ``FORGET_UNANSWERED`` seconds)."""
        if kind not in NAT_KINDS or self.nodes[name].kind not in NAT_KINDS:
            raise ValueError(f"{name!r} is not a NAT of this lab, or {kind!r} no NAT kind")
        self.run(name, ["nft", "delete", "table", "ip", "bhnat"])
        self.run(name, ["nft", "-f", "-"], input=_NAT % _MASQUERADE[kind])
        self.nodes[name].kind = kind

    def add_host(self, name: str, behind: str | None = None) -> Node:
        """A host on the internet, or on the home network of the NAT ``behind``."""
        if behind is None:
            public = sum(1 for n in self.nodes.values() if n.kind == "host" and not n.behind)
            host = self._namespace(name, "host", str(INTERNET[FIRST_PUBLIC_HOST + public]))
            self._plug(self.internet, host, "eth0")
            return host
        nat = self.nodes.get(behind)
        if nat is None or nat.lan is None:
            raise ValueError(f"{behind!r} is not a NAT of this lab")
        nat.hosts += 1
        host = self._namespace(name, "host", str(nat.lan[FIRST_LAN_HOST + nat.hosts - 1]),
                               behind=nat)
        self._plug(nat, host, "eth0", bridge="lan0")
        self._ip(host, "route", "add", "default", "via", str(nat.lan[1]))
        return host

    def add_route(self, name: str, network: str, via: str) -> None:
        """Route ``network`` from host ``name`` through the public address of ``via``
        (to knock on a NAT's home network directly from outside)."""
        self._ip(self.nodes[name], "route", "add", network, "via", self.nodes[via].address)

    def _namespace(self, name: str, kind: str, address, behind=None) -> Node:
        if not _NAME.match(name) or name in self.nodes:
            raise ValueError(f"lab names are unique, 1-16 of [a-z0-9]: {name!r}")
        node = Node(name, self.prefix + name, kind, address, behind)
        self.created.append(node.ns)  # first: a signal right after the add still removes it
        run(["ip", "netns", "add", node.ns])
        self.nodes[name] = node
        self._ip(node, "link", "set", "lo", "up")
        return node

    def _plug(self, switch: Node, node: Node, ifname: str, bridge: str = "br0") -> None:
        """A veth pair: ``ifname`` in ``node`` (with its address), a port on the bridge
        of ``switch``.  Names are per namespace, so short fixed ones fit 15 chars."""
        switch.ports += 1
        port = f"p{switch.ports}"
        self._ip(switch, "link", "add", port, "type", "veth", "peer", "name", ifname,
                 "netns", node.ns)
        self._ip(switch, "link", "set", port, "master", bridge, "up")
        self._ip(node, "addr", "add", f"{node.address}/24", "dev", ifname)
        self._ip(node, "link", "set", ifname, "up")

    def _ip(self, node: Node, *args) -> None:
        run(["ip", "-n", node.ns, *args])

    # -- using ---------------------------------------------------------------------------
    def address(self, name: str) -> str:
        """The node's own address (a router's: its public one)."""
        return self.nodes[name].address

    def public_address(self, name: str) -> str:
        """Where the internet sees ``name`` come from: its router's address if behind one."""
        node = self.nodes[name]
        return node.behind.address if node.behind else node.address

    def exec_prefix(self, name: str) -> list[str]:
        """Put this in front of a command to run it on ``name``."""
        if name not in self.nodes:
            raise ValueError(f"{name!r} is not a node of this lab (daemons run on the "
                             "host of their identity's name)")
        return ["ip", "netns", "exec", self.nodes[name].ns]

    def run(self, name: str, argv, **kw) -> subprocess.CompletedProcess:
        """Run ``argv`` on ``name`` and wait (``LabError`` on a non-zero exit)."""
        return run([*self.exec_prefix(name), *map(str, argv)], **kw)

    def popen(self, name: str, argv, **kw) -> subprocess.Popen:
        """Start ``argv`` on ``name``; ``close`` stops it, and it dies with us."""
        if self.closed:
            raise LabError("the lab is closed")
        proc = subprocess.Popen([*self.exec_prefix(name), *map(str, argv)],
                                preexec_fn=_die_with_parent if _prctl else None, **kw)
        self.procs.append(proc)
        return proc

    # -- removing ------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every process in the lab's namespaces and delete them; idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.terminate()
            remove_namespaces(self.created)
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        finally:
            if self in _open:
                _open.remove(self)
        left = [ns for ns in list_namespaces() if ns.startswith(self.prefix)]
        if left:
            raise LabError(f"namespaces left after closing the lab: {' '.join(left)}")


# -- every way out closes the open labs ----------------------------------------------------
def close_all() -> None:
    for lab in list(_open):
        try:
            lab.close()
        except Exception as e:  # keep closing the others; say it once
            print(f"netlab: {e}", file=sys.stderr)


atexit.register(close_all)


def _on_signal(previous):
    def handler(signum, frame):
        _interrupted.append(signum)
        close_all()
        if callable(previous):
            return previous(signum, frame)
        if previous == signal.SIG_IGN:
            return None
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return None
    return handler


def _install_handlers() -> None:
    """Once per process, from the main thread only (Python allows nothing else)."""
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    _handlers_installed = True
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal(signal.getsignal(signum)))


# -- can the lab run here? ---------------------------------------------------------------
_verdict: list = []


def unavailable() -> str | None:
    """None when the lab can run here, else why not, in one line (checked once)."""
    if not _verdict:
        _verdict.append(_check())
    return _verdict[0]


def _check() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the NAT lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the NAT lab needs root (it creates network namespaces)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"the NAT lab needs `{tool}` (apt-get install {package})"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        run(["ip", "netns", "add", probe])
    except (LabError, OSError, subprocess.SubprocessError) as e:
        return f"the NAT lab cannot create a network namespace: {e}"
    try:
        run(["ip", "netns", "exec", probe, "nft", "-f", "-"],
            input=_RULES + _NAT % _MASQUERADE["symmetric"])
    except (LabError, OSError, subprocess.SubprocessError) as e:
        return f"the NAT lab cannot load its nftables rules: {e}"
    finally:
        run(["ip", "netns", "delete", probe], check=False)
    return None


if __name__ == "__main__":  # python -m tests.netlab.lab sweep
    if sys.argv[1:] != ["sweep"]:
        sys.exit("usage: python -m tests.netlab.lab sweep")
    for ns in sweep():
        print(f"removed {ns}")
