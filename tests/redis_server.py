"""A real redis-server for the cluster backend's tests: on a free 127.0.0.1 port, in a
temporary directory, keeping nothing on disk, killed when the test ends.  It can be
stopped and started again on the same port, or paused (SIGSTOP), to test what the
backend does when Redis goes away or stops answering.

Without the binary the tests skip; ``tests/test_cluster_backend.py`` then reports one
skipped test with ``NOT_FOUND`` as its reason, the line a test run shows.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

NOT_FOUND = "redis tests: redis-server not found (apt-get install redis-server)"


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def unavailable() -> str | None:
    """None when the Redis tests can run here, else why not, in one line."""
    return None if redis_binary() else NOT_FOUND


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_reply(f):
    """One RESP2 reply from the file ``f``: enough for the tests' own checks."""
    line = f.readline()
    if not line:
        raise ConnectionError("redis-server closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [read_reply(f) for _ in range(n)]
    raise ValueError(f"not a RESP reply: {line!r}")


class RedisServer:
    """One redis-server process.  ``password`` makes it ``--requirepass``."""

    def __init__(self, password: str | None = None, startup: float = 10.0):
        binary = redis_binary()
        if binary is None:
            raise RuntimeError(NOT_FOUND)
        self.binary = binary
        self.password = password
        self.startup = startup
        self.dir = tempfile.mkdtemp(prefix="blockhub-redis-")
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(self.dir, "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers PING."""
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--logfile", self.log_path,
                "--unixsocket", os.path.join(self.dir, "redis.sock")]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: "
                                   f"{self._log_tail()}")
            try:
                reply = self.command("PING")
            except OSError:
                reply = None
            if reply == "PONG":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer in {self.startup} s: "
                                   f"{self._log_tail()}")
            time.sleep(0.02)  # polling a child process's start, with a deadline

    @property
    def unix_path(self) -> str:
        return os.path.join(self.dir, "redis.sock")

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def command(self, *args, db: int = 0):
        """Run one command on a connection of its own (after AUTH and SELECT)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
            f = s.makefile("rb")
            commands = [("SELECT", db), args]
            if self.password is not None:
                commands.insert(0, ("AUTH", self.password))
            for command in commands:
                parts = [a if isinstance(a, bytes) else str(a).encode() for a in command]
                s.sendall(b"*%d\r\n" % len(parts)
                          + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
                reply = read_reply(f)
            return reply

    def stop(self) -> None:
        """Kill it at once (the port is free again when this returns)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """It stops answering, its connections stay open."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.resume()
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_redis(case, password: str | None = None) -> RedisServer:
    """A started server, killed and removed when ``case`` (a trial test) ends; the test
    skips when there is no redis-server."""
    from twisted.trial.unittest import SkipTest

    reason = unavailable()
    if reason:
        raise SkipTest(reason)
    server = RedisServer(password=password)
    case.addCleanup(server.close)
    server.start()
    return server
