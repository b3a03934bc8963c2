"""What every benchmark script shares: child processes that always die with us, the
gateway daemon, load workers driven over JSON lines, /proc readings, statistics,
tables and the JSON result files.

Nothing here talks to anything but 127.0.0.0/8.  Every child is started in its own
process group with PR_SET_PDEATHSIG, and ``Children.stop_all`` (run from ``finally``
blocks, ``atexit`` and the SIGTERM/SIGINT handlers) sends SIGTERM to each group, then
SIGKILL to what is left.
"""

import atexit
import ctypes
import json
import os
import platform
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "results")
PYTHON = sys.executable
BIN = os.path.dirname(PYTHON)
TWISTD = os.path.join(BIN, "twistd")
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# The tests' RESP reader serves here too.  Appended, not put first: blockhub itself is
# the installed one (or PYTHONPATH's), never shadowed by the tree.
sys.path.append(REPO)
from tests.redis_server import read_reply, redis_binary  # noqa: E402


class BenchError(RuntimeError):
    """A benchmark could not take its measurement (said in one line)."""


# -- limits and signals -------------------------------------------------------------------
def raise_nofile() -> int:
    """Raise the soft file-descriptor limit to the hard limit; return the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def install_signal_handlers():
    """SIGTERM, SIGHUP and SIGINT unwind the stack, so every ``finally`` runs."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _exit_on_signal)


try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def _child_setup():  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die if the benchmark dies


# -- child processes ------------------------------------------------------------------
class Children:
    """Every process this script started; each in its own process group."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []
        atexit.register(self.stop_all)

    def spawn(self, argv, log_path, env=None, cwd=None, stdin=subprocess.DEVNULL,
              stdout=None) -> subprocess.Popen:
        log = open(log_path, "ab")
        try:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=stdin,
                stdout=stdout if stdout is not None else log, stderr=log,
                start_new_session=True, preexec_fn=_child_setup)
        finally:
            log.close()
        proc.log_path = log_path
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc, timeout: float = 10.0):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left in its group (it may have children of its own)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(5)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def stop_all(self, timeout: float = 10.0):
        procs, self.procs = self.procs, []
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in procs:
            self.stop(proc, timeout=1.0)


def tail(path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 8000))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# -- a scratch directory ----------------------------------------------------------------
class Scratch:
    """A short temporary root under /tmp (control sockets need short paths) with its own
    key ring; removed at the end unless BENCH_KEEP is set."""

    def __init__(self, prefix="bhb-"):
        self.root = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        self.keyring = os.path.join(self.root, "keyring")
        self.env = dict(os.environ, BLOCKHUB_KEYRING=self.keyring,
                        HOME=os.path.join(self.root, "home"), PYTHONUNBUFFERED="1")
        self.env.pop("BLOCKHUB_PASSPHRASE", None)
        os.environ["BLOCKHUB_KEYRING"] = self.keyring  # for create/load in this process

    def path(self, *parts) -> str:
        return os.path.join(self.root, *parts)

    def close(self):
        if os.environ.get("BENCH_KEEP"):
            print(f"(kept {self.root})", file=sys.stderr)
            return
        shutil.rmtree(self.root, ignore_errors=True)


def make_identity_dir(scratch: Scratch, name: str):
    """A data directory with a sealed identity, as ``blockhub init`` makes it."""
    from blockhub import keystore
    from blockhub.identity import new_phrase
    data_dir = scratch.path(name)
    identity = keystore.create_identity(data_dir, new_phrase(), name=name,
                                        keyring=scratch.keyring)
    return data_dir, identity


# -- /proc ----------------------------------------------------------------------------
def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (not its children), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat


def load_average() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# -- the gateway daemon -----------------------------------------------------------------
_gateway_options_cache: dict[str, bool] = {}


def gateway_supports(option: str, env) -> bool:
    """Whether this blockhub's gateway plugin knows ``--option`` (the code moves)."""
    if "help" not in _gateway_options_cache:
        done = subprocess.run([TWISTD, "blockhub-gateway", "--help"], env=env,
                              capture_output=True, text=True, timeout=60)
        _gateway_options_cache["help"] = done.stdout
    return f"--{option}" in _gateway_options_cache["help"]


class Gateway:
    """A real ``twistd -n blockhub-gateway`` on 127.0.0.1, port chosen by the OS."""

    def __init__(self, children: Children, scratch: Scratch, name="gateway",
                 idle_timeout: float | None = None, extra=(), twistd_args=()):
        self.children, self.scratch = children, scratch
        self.name = name
        if os.path.exists(scratch.path(name, "identity.json")):
            self.data_dir = scratch.path(name)
            from blockhub import keystore
            self.identity = keystore.load_identity(self.data_dir, keyring=scratch.keyring)
        else:
            self.data_dir, self.identity = make_identity_dir(scratch, name)
        self.id = self.identity.id
        self.idle_timeout = idle_timeout
        self.extra = list(extra)
        self.twistd_args = list(twistd_args)
        self.proc = None
        self.port = None
        self.log = scratch.path(f"{name}.log")

    def start(self, timeout: float = 30.0):
        # BENCH_EXPERIMENT (experiments.py) starts twistd through twistd_experiment.py
        twistd = ([PYTHON, os.path.join(BENCH, "twistd_experiment.py")]
                  if os.environ.get("BENCH_EXPERIMENT") else [TWISTD])
        argv = [*twistd, "-n", "--pidfile", "", *self.twistd_args, "blockhub-gateway",
                "--data-dir",
                self.data_dir, "--listen", f"tcp:0:interface={LOOPBACK}:backlog=4096"]
        if self.idle_timeout:
            argv += ["--idle-timeout", str(self.idle_timeout)]
        argv += self.extra
        self.proc = self.children.spawn(argv, self.log, env=self.scratch.env,
                                        cwd=self.scratch.root)
        from blockhub.control.client import call
        from blockhub.errors import UserError
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the gateway exited at start:\n{tail(self.log)}")
            try:
                status = call(self.data_dir, "status", timeout=5)
            except (UserError, OSError):
                time.sleep(0.1)
                continue
            if status.get("listen"):
                self.port = int(status["listen"].rpartition(":")[2])
                return self
            time.sleep(0.1)
        raise BenchError(f"the gateway did not start within {timeout:g}s:\n{tail(self.log)}")

    @property
    def spec(self) -> str:
        return f"{self.id}@{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self) -> dict:
        from blockhub.control.client import call
        return call(self.data_dir, "status", timeout=30)

    def stop(self):
        if self.proc is not None:
            Children.stop(self.proc)
            if self.proc in self.children.procs:
                self.children.procs.remove(self.proc)
            self.proc = None


# -- load workers -----------------------------------------------------------------------
class WorkerDied(BenchError):
    pass


class Worker:
    """A load process (``loadclient.py`` or ``hubworker.py``) spoken to in JSON lines:
    commands on its stdin, events on its stdout (read by a thread into a queue)."""

    def __init__(self, children: Children, scratch: Scratch, script: str, name: str,
                 args=(), env=None):
        self.name = name
        self.log = scratch.path(f"{name}.log")
        self.proc = children.spawn([PYTHON, os.path.join(BENCH, script), *map(str, args)],
                                   self.log, env=env or scratch.env, cwd=scratch.root,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.events: queue.Queue = queue.Queue()
        self.pending: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            self.events.put(event)
        self.events.put({"ev": "eof"})

    def send(self, cmd: str, **fields):
        line = json.dumps(dict(fields, cmd=cmd)) + "\n"
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerDied(f"worker {self.name} is gone:\n{tail(self.log)}")

    def wait(self, ev: str, timeout: float, match=None) -> dict:
        """The next event named ``ev`` (others are kept for later waits)."""
        for i, event in enumerate(self.pending):
            if event.get("ev") == ev and (match is None or match(event)):
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"worker {self.name}: no {ev!r} within {timeout:g}s\n"
                                 f"{tail(self.log, 8)}")
            try:
                event = self.events.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            kind = event.get("ev")
            if kind == "eof":
                raise WorkerDied(f"worker {self.name} exited while waiting for {ev!r}:\n"
                                 f"{tail(self.log)}")
            if kind == "error":
                raise BenchError(f"worker {self.name}: {event.get('error')}\n"
                                 f"{tail(self.log, 8)}")
            if kind == ev and (match is None or match(event)):
                return event
            self.pending.append(event)

    def call(self, cmd: str, ev: str, timeout: float, **fields) -> dict:
        self.send(cmd, **fields)
        return self.wait(ev, timeout)


def start_workers(children, scratch, script, count, prefix="w", args=()):
    workers = [Worker(children, scratch, script, f"{prefix}{i}", args=args)
               for i in range(count)]
    for w in workers:
        w.wait("ready", 60)
    return workers


def broadcast(workers, cmd: str, ev: str, timeout: float, per_worker=None, **fields):
    """Send ``cmd`` to every worker (optionally with per-worker fields) and collect one
    ``ev`` event from each."""
    for i, w in enumerate(workers):
        extra = per_worker(i) if per_worker else {}
        w.send(cmd, **fields, **extra)
    deadline = time.monotonic() + timeout
    return [w.wait(ev, max(0.1, deadline - time.monotonic())) for w in workers]


def split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


# -- statistics ------------------------------------------------------------------------
def percentile(values, p: float) -> float:
    """Linear interpolation between closest ranks (p in 0..100)."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    k = (len(data) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def summary(values) -> dict:
    """min / median / max of the repetitions of one figure."""
    values = [v for v in values if v is not None]
    if not values:
        return {"min": None, "median": None, "max": None, "n": 0, "values": []}
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "n": len(values), "values": values}


def ratio_summary(numerators, denominators) -> dict:
    """Per-repetition ratios (rep i of one over rep i of the other: same run)."""
    return summary([a / b for a, b in zip(numerators, denominators) if a and b])


# -- output ----------------------------------------------------------------------------
def fmt(value, unit="") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "nan"
        a = abs(value)
        text = (f"{value:.3g}" if a < 10 else f"{value:,.1f}" if a < 1000
                else f"{value:,.0f}")
    else:
        text = f"{value:,}"
    return text + (f" {unit}" if unit else "")


def fmt_summary(s: dict, unit="") -> str:
    if not s or s.get("median") is None:
        return "-"
    return f"{fmt(s['min'])} / {fmt(s['median'])} / {fmt(s['max'])}" + (f" {unit}" if unit
                                                                        else "")


def print_table(title: str, headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    sys.stdout.flush()


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_result(name: str, data: dict, quick: bool) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    doc = {"benchmark": name, "quick": quick, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "commit": git_commit(), "machine": {"cpus": os.cpu_count(),
                                               "python": platform.python_version(),
                                               "load_average": load_average()},
           **data}
    path = os.path.join(RESULTS, f"{name}{'-quick' if quick else ''}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


def standard_args(description: str):
    import argparse
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes (for make bench-quick)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each figure")
    return p


class Bench:
    """The frame of every script: signals, rlimit, scratch dir, children; always cleans up."""

    def __init__(self, name: str):
        self.name = name
        self.started = time.monotonic()

    def __enter__(self):
        install_signal_handlers()
        raise_nofile()
        self.children = Children()
        self.scratch = Scratch(prefix=f"bhb-{self.name[:6]}-")
        return self

    def __exit__(self, kind, value, tb):
        try:
            self.children.stop_all()
        finally:
            if kind is not None and kind is not SystemExit:
                print(f"\n{self.name}: logs in {self.scratch.root}", file=sys.stderr)
                os.environ["BENCH_KEEP"] = "1"
            self.scratch.close()
        return False

    def elapsed(self) -> float:
        return time.monotonic() - self.started


# -- a redis-server (the cluster benchmark) ------------------------------------------------
class Redis:
    """A real ``redis-server`` on a free 127.0.0.1 port, its directory in the scratch
    root, nothing on disk; a child like every other (own process group, PDEATHSIG)."""

    def __init__(self, children: Children, scratch: Scratch, name="redis"):
        import socket
        binary = redis_binary()
        if binary is None:
            raise BenchError("redis-server not found (apt-get install redis-server)")
        self.children, self.binary = children, binary
        self.dir = scratch.path(name)
        os.makedirs(self.dir, exist_ok=True)
        with socket.socket() as s:
            s.bind((LOOPBACK, 0))
            self.port = s.getsockname()[1]
        self.log = scratch.path(f"{name}.log")
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 15.0):
        argv = [self.binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                "--logfile", self.log]
        self.proc = self.children.spawn(argv, self.log + ".out")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"redis-server exited at start:\n{tail(self.log)}")
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError(f"redis-server did not answer within {timeout:g}s")

    def command(self, *args):
        import socket
        with socket.create_connection((LOOPBACK, self.port), timeout=5.0) as s:
            parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
            s.sendall(b"*%d\r\n" % len(parts)
                      + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
            return read_reply(s.makefile("rb"))

    def info(self, section: str) -> dict:
        """``INFO section`` as a dict of its ``key:value`` lines (values as text)."""
        raw = self.command("INFO", section)
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        out = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and not key.startswith("#"):
                out[key] = value
        return out

    def commandstats(self) -> dict[str, int]:
        """Calls per command (``cmdstat_hset`` -> ``hset``), scripts' inner calls too."""
        out = {}
        for key, value in self.info("commandstats").items():
            if key.startswith("cmdstat_"):
                fields = dict(kv.split("=", 1) for kv in value.split(","))
                out[key[len("cmdstat_"):]] = int(fields["calls"])
        return out

    def total_commands(self) -> int:
        return int(self.info("stats")["total_commands_processed"])

    def stop(self):
        if self.proc is not None:
            Children.stop(self.proc)
            if self.proc in self.children.procs:
                self.children.procs.remove(self.proc)
            self.proc = None
