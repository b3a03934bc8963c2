"""A harness for integration tests: real ``twistd`` gateways and hubs on 127.0.0.1.

Every test gets a ``Network``: a short temporary root under /tmp (the control sockets
live in the data directories and UNIX socket paths must stay under 100 characters),
its own key ring (``$BLOCKHUB_KEYRING``; the real home is never used), identities made
with ``blockhub init``, and daemons started with ``twistd -n`` from the venv, with the
source tree first on ``PYTHONPATH``.  Each daemon logs to ``ROOT/NAME.log``.

Synchronisation is by polling (``wait_for``) with a deadline, never by fixed sleeps; a
timeout fails with what was expected, the last value seen and the tail of the logs
involved.  The network's cleanup stops every daemon (SIGTERM, then SIGKILL after 10 s)
and removes the root; daemons also get SIGTERM if the test process itself dies.
"""

import atexit
import ctypes
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
TWISTD = os.path.join(BIN, "twistd")
BLOCKHUB = os.path.join(BIN, "blockhub")
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"
LISTEN_ANY_PORT = f"tcp:0:interface={LOOPBACK}"
ID_PATTERN = re.compile(r"^bh[a-z2-7]{58}$")
STOP_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 10.0
# A daemon's start (twistd, imports, its key unsealed) gets longer: on a loaded machine
# it has taken more than 10 s, which is no fault of the code under test.
STARTUP_TIMEOUT = 30.0
POLL_INTERVAL = 0.1
KEEP_ENV = "BLOCKHUB_TEST_KEEP"  # set to keep temporary roots for inspection

# Commands that only talk to a running daemon over its control socket; ``cli`` runs
# them in this process (the same ``blockhub.cli.main`` as the console script) because
# polling through a new interpreter each 0.1 s would cost a third of a second a call.
_CONTROL_COMMANDS = ("status", "hubs")

_live: set = set()  # every daemon not yet reaped, for the exit handler

# PYTHONPATH puts the source tree's ``blockhub`` ahead of the installed copy, but not
# its twistd plugin: ``twisted.plugins`` *appends* the other ``twisted/plugins``
# directories to its path, so twistd would import the installed
# ``blockhub_plugins.py``, whose options can lag behind the source (a KeyError at start
# when a new option is read).  This ``sitecustomize``, first on the daemons'
# PYTHONPATH, puts the source tree's plugin directory first.
_SITECUSTOMIZE = """\
import os

_plugins = os.environ.get("BLOCKHUB_TEST_PLUGINS")
if _plugins:
    import twisted.plugins

    if _plugins in twisted.plugins.__path__:
        twisted.plugins.__path__.remove(_plugins)
    twisted.plugins.__path__.insert(0, _plugins)
"""


class CLIError(AssertionError):
    """``blockhub`` exited non-zero."""

    def __init__(self, argv, code, out, err):
        super().__init__(f"blockhub {' '.join(map(str, argv))} exited {code}: "
                         f"{(err or out).strip()}")
        self.code, self.out, self.err = code, out, err


try:  # looked up now: the child, between fork and exec, should only make the call
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") \
        else None
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent():  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGTERM to the daemon if the test process dies first."""
    _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _reap_all():
    for daemon in list(_live):
        daemon.stop()


atexit.register(_reap_all)


def tail(path, lines: int = 25) -> str:
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(no log {path}: {e.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def _describe_logs(logs) -> str:
    parts = []
    for item in logs:
        path = getattr(item, "log", item)
        name = getattr(item, "name", os.path.basename(str(path)))
        parts.append(f"--- last lines of {name} ({path}) ---\n{tail(path)}")
    return "\n".join(parts)


def wait_for(predicate, timeout: float = DEFAULT_TIMEOUT, what: str = "condition",
             logs=(), interval: float = POLL_INTERVAL):
    """Call ``predicate`` every ``interval`` seconds until it returns something true;
    return that.  A ``CLIError`` counts as "not yet" (a daemon still starting).  A
    daemon among ``logs`` that exits, or the deadline, fails the test with ``what``,
    the last value or error seen and the tails of ``logs``."""
    deadline = time.monotonic() + timeout
    last = error = None
    while True:
        try:
            value = predicate()
        except CLIError as e:
            error = e
        else:
            if value:
                return value
            last = value
        for item in logs:
            if isinstance(item, Daemon) and item.expected_running and not item.running:
                raise AssertionError(
                    f"{item.name} exited (status {item.proc.returncode}) while waiting "
                    f"for: {what}\n{_describe_logs(logs)}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for: {what}\n"
                                 f"last value: {last!r}; last CLI error: {error}\n"
                                 f"{_describe_logs(logs)}")
        time.sleep(interval)


def cli(*args, env=None, inprocess=None, timeout: float = 30.0):
    """Run ``blockhub ARGS`` and return its output parsed as JSON (text when it is not
    JSON).  ``status`` and ``hubs`` run in-process unless ``inprocess=False``; every
    other command runs the real ``blockhub`` binary with ``env``.  Non-zero exit
    raises ``CLIError``."""
    argv = [str(a) for a in args]
    if inprocess is None:
        inprocess = bool(argv) and argv[0] in _CONTROL_COMMANDS
    if inprocess:
        from blockhub.cli import main

        out, err = io.StringIO(), io.StringIO()
        code = main(argv, stdin=io.StringIO(""), stdout=out, stderr=err)
        out, err = out.getvalue(), err.getvalue()
    else:
        done = subprocess.run([BLOCKHUB, *argv], env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        code, out, err = done.returncode, done.stdout, done.stderr
    if code != 0:
        raise CLIError(argv, code, out, err)
    try:
        return json.loads(out)
    except ValueError:
        return out


class Identity:
    def __init__(self, name: str, data_dir: str, id: str):
        self.name, self.data_dir, self.id = name, data_dir, id

    def __repr__(self):
        return f"<Identity {self.name} {self.id}>"


class Daemon:
    """One ``twistd -n`` process (a gateway or a hub) and its data directory."""

    def __init__(self, network, role: str, identity: Identity, argv, log: str):
        self.network = network
        self.role = role
        self.identity = identity
        self.name = identity.name
        self.id = identity.id
        self.data_dir = identity.data_dir
        self.argv = argv
        self.log = log
        self.proc = None
        self.expected_running = False
        self.listen = None

    def __repr__(self):
        return f"<{self.role} {self.name} pid={self.proc and self.proc.pid}>"

    # -- process -----------------------------------------------------------------------
    def start(self):
        assert not self.running, f"{self.name} is already running"
        with open(self.log, "ab") as log:
            log.write(f"=== harness: starting {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv, cwd=self.network.root, env=self.network.daemon_env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if _prctl is not None else None)
        self.expected_running = True
        _live.add(self)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT):
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; return the exit status
        (twistd re-raises the signal it stopped on: -SIGTERM is a clean stop)."""
        self.expected_running = False
        _live.discard(self)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        """``kill -9``: SIGKILL, then reap the process (so twistd, started again, finds
        its old pid file stale instead of refusing to start); return the exit status."""
        self.expected_running = False
        _live.discard(self)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        return self.proc.returncode

    def stopped_cleanly(self) -> bool:
        """Stop (if running); True when twistd shut down on the SIGTERM, not a SIGKILL."""
        code = self.stop()
        return code in (0, -signal.SIGTERM) and "Server Shut Down." in tail(self.log, 5)

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT):
        """Until the control socket answers ``status`` (and a gateway reports its port)."""
        def ready():
            status = self.status()
            return status if status.get("role") == self.role and \
                (self.role != "gateway" or status.get("listen")) else None
        status = wait_for(ready, timeout, f"{self.name} ({self.role}) to answer status",
                          logs=[self])
        if self.role == "gateway":
            self.listen = status["listen"]
        return self

    # -- control socket --------------------------------------------------------------
    def status(self, **kw):
        return cli("status", "--data-dir", self.data_dir, "--json", **kw)

    def hubs(self, **kw):
        return cli("hubs", "--data-dir", self.data_dir, "--json", **kw)

    def ctl(self, command: str, *args, as_json: bool = True):
        """Any control command (``pending``, ``peers``, ``messages``, ``archive``...)
        run in this process through ``blockhub.cli.main``, cheap enough to poll; with
        ``as_json`` the answer of ``--json``, parsed."""
        extra = ("--json",) if as_json else ()
        return cli(command, "--data-dir", self.data_dir, *args, *extra, inprocess=True)

    # -- gateway conveniences ----------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def spec(self) -> str:
        """``ID@127.0.0.1:PORT``, as a hub's ``--gateway`` wants it."""
        return f"{self.id}@{LOOPBACK}:{self.port}"


class Network:
    """A temporary root, a key ring and the daemons of one test; cleaned up by the test."""

    def __init__(self, case):
        self.case = case
        self.root = tempfile.mkdtemp(prefix="bh-", dir="/tmp")
        self.keyring = os.path.join(self.root, "keyring")
        self.env = dict(os.environ, BLOCKHUB_KEYRING=self.keyring, PYTHONPATH=REPO,
                        HOME=os.path.join(self.root, "home"))
        self.env.pop("BLOCKHUB_PASSPHRASE", None)
        # Daemons also get the source tree's twistd plugin (see _SITECUSTOMIZE).
        boot = self.path("boot")
        os.mkdir(boot)
        with open(os.path.join(boot, "sitecustomize.py"), "w") as f:
            f.write(_SITECUSTOMIZE)
        self.daemon_env = dict(self.env, PYTHONPATH=os.pathsep.join([boot, REPO]),
                               BLOCKHUB_TEST_PLUGINS=os.path.join(REPO, "twisted", "plugins"))
        self.daemons: list[Daemon] = []
        case.addCleanup(self.close)

    def path(self, *parts) -> str:
        return os.path.join(self.root, *parts)

    def close(self):
        for daemon in reversed(self.daemons):
            daemon.stop()
        if not os.environ.get(KEEP_ENV):
            shutil.rmtree(self.root, ignore_errors=True)

    # -- the blockhub command ----------------------------------------------------------
    def blockhub(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        """Run the real ``blockhub`` binary with this network's environment."""
        done = subprocess.run([BLOCKHUB, *map(str, args)], env=self.env, cwd=self.root,
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise CLIError(args, done.returncode, done.stdout, done.stderr)
        return done

    def identities(self, *names) -> list[Identity]:
        """``blockhub init --data-dir ROOT/NAME --name NAME`` for each name, in parallel."""
        procs = [(name, subprocess.Popen(
            [BLOCKHUB, "init", "--data-dir", self.path(name), "--name", name],
            env=self.env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)) for name in names]
        made = []
        for name, proc in procs:
            out, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise CLIError(["init", name], proc.returncode, out, err)
            first = out.splitlines()[0] if out else ""
            assert first.startswith("id: "), f"blockhub init printed {out!r}"
            ident = first[4:].strip()
            assert ID_PATTERN.match(ident), f"blockhub init gave a malformed id {ident!r}"
            made.append(Identity(name, self.path(name), ident))
        return made

    def network_key(self, name: str) -> str:
        path = self.path(name)
        self.blockhub("network-key", "--out", path)
        return path

    def write(self, name: str, text: str) -> str:
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- daemons -----------------------------------------------------------------------
    def _daemon(self, role, identity, options) -> Daemon:
        argv = [TWISTD, "-n", f"blockhub-{role}", "--data-dir", identity.data_dir,
                *map(str, options)]
        daemon = Daemon(self, role, identity, argv, self.path(f"{identity.name}.log"))
        self.daemons.append(daemon)
        return daemon

    def gateway(self, identity: Identity, *options, listen: str = LISTEN_ANY_PORT,
                ready: bool = True) -> Daemon:
        """Start a gateway; with ``ready``, wait until it reports its listening port."""
        daemon = self._daemon("gateway", identity, ["--listen", listen, *options]).start()
        return daemon.wait_ready() if ready else daemon

    def hub(self, identity: Identity, *options, gateways=(), ready: bool = True) -> Daemon:
        """Start a hub dialing ``gateways`` (gateway daemons or ``ID@HOST:PORT`` text)."""
        args = []
        for gw in gateways:
            args += ["--gateway", gw.spec if isinstance(gw, Daemon) else gw]
        daemon = self._daemon("hub", identity, [*args, *options]).start()
        return daemon.wait_ready() if ready else daemon

    def hubs(self, identities, *options, gateways=()) -> list[Daemon]:
        """Start several hubs at once and wait until all of them answer."""
        daemons = [self.hub(i, *options, gateways=gateways, ready=False) for i in identities]
        return [d.wait_ready() for d in daemons]

    def hubs_each(self, specs, gateways=()) -> list[Daemon]:
        """Start hubs that each have options of their own, all at once, and wait until
        all of them answer: ``specs`` is a list of ``(identity, [options])``."""
        daemons = [self.hub(identity, *options, gateways=gateways, ready=False)
                   for identity, options in specs]
        return [d.wait_ready() for d in daemons]

    def restart(self, daemon: Daemon, *, listen: str | None = None) -> Daemon:
        """Start ``daemon`` again with the same options (a gateway may get a new listen)."""
        assert not daemon.running, f"{daemon.name} is still running"
        if listen is not None:
            i = daemon.argv.index("--listen")
            daemon.argv[i + 1] = listen
        daemon.start()
        return daemon.wait_ready()


# -- predicates shared by the tests ----------------------------------------------------
def gateway_row(status: dict, gateway_id: str) -> dict:
    rows = [row for row in status["gateways"] if row["id"] == gateway_id]
    assert len(rows) == 1, f"gateway {gateway_id} appears {len(rows)} times in {status}"
    return rows[0]


def online_at(hub: Daemon, gateway_id: str):
    """The hub's status if it is online at ``gateway_id``, else None."""
    status = hub.status()
    if status["gateway"] == gateway_id and gateway_row(status, gateway_id)["state"] == "online":
        return status
    return None


def listed_ids(daemon: Daemon) -> set:
    return {row["id"] for row in daemon.hubs()}


def wait_online(hub: Daemon, gateway: Daemon, timeout: float = DEFAULT_TIMEOUT, logs=()):
    return wait_for(lambda: online_at(hub, gateway.id), timeout,
                    f"{hub.name} to be online at {gateway.name}",
                    logs=[hub, gateway, *logs])


def wait_lists(daemon: Daemon, expected: set, timeout: float = DEFAULT_TIMEOUT, logs=()):
    """Until ``daemon``'s hubs list holds exactly the ids in ``expected``; the list."""
    def check():
        rows = daemon.hubs()
        ok = {row["id"] for row in rows} == set(expected) and len(rows) == len(expected)
        return (rows,) if ok else None  # a tuple: an empty list is an answer too
    return wait_for(check, timeout, f"{daemon.name} to list exactly {sorted(expected)}",
                    logs=[daemon, *logs])[0]


class TCPRecorder:
    """A loopback TCP forwarder to ``127.0.0.1:target_port`` that keeps every byte it
    passes, per direction: what a passive observer of the connection would see.
    ``up`` is client to server, ``down`` server to client.  Call ``close`` (the tests
    register it as a cleanup)."""

    def __init__(self, target_port: int):
        self.target = (LOOPBACK, target_port)
        self.up, self.down = bytearray(), bytearray()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.outgoing: list[str] = []  # HOST:PORT of each connection made to the target
        self.threads: list[threading.Thread] = []
        self.closed = False
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(8)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self._spawn(self._accept)

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self.lock:
                self.sockets += [client, server]
                self.outgoing.append("%s:%d" % server.getsockname()[:2])
            self._spawn(self._pump, client, server, self.up)
            self._spawn(self._pump, server, client, self.down)

    def _pump(self, src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    record += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def snapshot(self) -> tuple[bytes, bytes]:
        with self.lock:
            return bytes(self.up), bytes(self.down)

    def close(self):
        self.closed = True
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        for thread in self.threads:
            thread.join(5)


def tls_records(data: bytes) -> list[tuple[int, int]]:
    """Split a captured TCP stream into TLS records: (content type, length) pairs.
    Fails if the stream is not a sequence of TLS records (a trailing partial record,
    cut by the capture, is allowed)."""
    records, i = [], 0
    while i + 5 <= len(data):
        kind, major, minor, length = data[i], data[i + 1], data[i + 2], \
            int.from_bytes(data[i + 3:i + 5], "big")
        assert kind in (20, 21, 22, 23) and (major, minor) in ((3, 1), (3, 3)), \
            f"not a TLS record at offset {i}: {data[i:i + 16]!r}"
        records.append((kind, length))
        i += 5 + length
    return records
