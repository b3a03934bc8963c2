"""BENCH_EXPERIMENT=NAME[,NAME...]: try a change to blockhub inside the benchmark's own
processes (the hub workers, and the gateway through ``twistd_experiment.py``), to
measure what it would be worth before anyone changes blockhub.  Off by default: no
benchmark sets it, and the figures in docs/performance.md are without it.

  lazy-unacked  ``Peers._pump`` reads the unacknowledged messages it may send one row
                at a time, so it stops reading when the transport pauses (blockhub
                reads up to max_inflight rows, texts and all, then may send only a few)
  window=BYTES  a relay circuit's end-to-end window (``circuit_flow.WINDOW``, 1 MiB),
                on the hubs and the gateway alike; the credit step stays a quarter
  profile-rest  cProfile from SIGUSR1 to SIGUSR2 only, written to $BENCH_PROFILE_OUT
                (a phase alone, such as the gateway at rest after a storm)
  tls-slice=BYTES  the gateway hands TLS at most this much per write (net/tls.py
                SLICE, 4 KiB; Twisted's own is 16 KiB): the memory BIO a connection
                keeps grows to its largest write
  gc-stats      time Python's collector spends per generation; on SIGUSR2 append the
                running totals to $BENCH_GC_OUT (read twice around a window)
  gc-freeze     on SIGUSR1, move every object alive into the collector's permanent
                generation (what the collector's walks of idle connections cost)
  eager-write   a TCP write with nothing buffered goes to the socket at once, instead
                of waiting for the reactor's next turn to find the socket writable
  flush-after-read  a connection's TLS writes made while it read (pongs) go out at the
                end of that read, not at the reactor's next turn
  tracemalloc   trace allocations from the start; on SIGUSR2 write the 60 lines that
                hold the most, and their counts, to $BENCH_TRACEMALLOC_OUT (what an
                admitted hub costs the gateway, line by line)
"""

import os


def names() -> list[str]:
    return [n for n in os.environ.get("BENCH_EXPERIMENT", "").split(",") if n]


def apply() -> None:
    valued = {"window": _window, "tls-slice": _tls_slice}  # NAME=BYTES
    for name in names():
        key, _, value = name.partition("=")
        if key in valued and value.isdigit():
            valued[key](int(value))
        elif key in _PLAIN and not value:
            _PLAIN[key]()
        else:
            raise SystemExit(f"unknown BENCH_EXPERIMENT {name!r}")


def _lazy_unacked():
    from blockhub.hub.store import Store
    eager = Store.unacked

    def unacked(self, peer, after=0, limit=-1):
        if limit < 0:
            return eager(self, peer, after, limit)
        return (dict(r) for r in self.execute(
            "SELECT seq, text, at FROM outbox WHERE peer = ? AND acked = 0 AND "
            "seq > ? ORDER BY seq LIMIT ?", (peer, after, limit)))

    Store.unacked = unacked


def _window(size: int):
    from blockhub import circuit_flow
    from blockhub.hub import circuit_transport
    from blockhub.net import framed
    circuit_flow.WINDOW = circuit_transport.WINDOW = framed.WINDOW = size
    circuit_flow.Flow.__init__.__defaults__ = (size,)
    circuit_transport.CREDIT_STEP = size // 4


def _tracemalloc():
    import signal
    import tracemalloc
    tracemalloc.start(4)

    def dump(signum, frame):
        snapshot = tracemalloc.take_snapshot()
        out = os.environ.get("BENCH_TRACEMALLOC_OUT", "tracemalloc.txt")
        with open(out + ".part", "w") as f:  # a dump cut short leaves the last whole one
            total = sum(s.size for s in snapshot.statistics("filename"))
            f.write(f"total {total} bytes\n")
            for stat in snapshot.statistics("lineno")[:60]:
                f.write(f"{stat.size:>12} {stat.count:>8} {stat.traceback}\n")
        os.replace(out + ".part", out)

    signal.signal(signal.SIGUSR2, dump)


def _no_session_cache():
    from OpenSSL import SSL

    from blockhub.net import tls
    made = tls._context

    def context(identity, verify):
        ctx = made(identity, verify)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        return ctx

    tls._context = context


def _trim():
    import ctypes
    import signal
    libc = ctypes.CDLL("libc.so.6")
    signal.signal(signal.SIGUSR1, lambda signum, frame: libc.malloc_trim(0))


def _profile_between_signals():
    import cProfile
    import signal
    profiler = cProfile.Profile()
    signal.signal(signal.SIGUSR1, lambda signum, frame: profiler.enable())

    def stop(signum, frame):
        profiler.disable()
        profiler.dump_stats(os.environ.get("BENCH_PROFILE_OUT", "rest.pstats"))

    signal.signal(signal.SIGUSR2, stop)


def _eager_write():
    from twisted.internet import tcp
    buffered = tcp.Connection.write

    def write(self, data):
        if (self.dataBuffer or self._tempDataBuffer or not data or not self.connected
                or self._writeDisconnected or self.disconnecting):
            return buffered(self, data)
        sent = self.writeSomeData(data)
        if isinstance(sent, int) and sent >= 0:
            if sent == len(data):
                return None
            data = data[sent:]
        return buffered(self, data)

    tcp.Connection.write = write


def _flush_after_read():
    from blockhub.net.framed import FramedProtocol
    read = FramedProtocol.dataReceived

    def dataReceived(self, data):
        read(self, data)
        aggregator = getattr(self.transport, "_aggregator", None)
        if aggregator is not None:
            aggregator.flush()

    FramedProtocol.dataReceived = dataReceived


def _tls_slice(size: int):
    from blockhub.net import tls
    tls.SLICE = size  # the gateway's SlicedTLSTransport reads it at every write


def _gc_stats():
    import gc
    import signal
    import time
    totals = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}
    started = [0.0]

    def timed(phase, info):
        if phase == "start":
            started[0] = time.process_time()
        else:
            entry = totals[info["generation"]]
            entry[0] += 1
            entry[1] += time.process_time() - started[0]

    gc.callbacks.append(timed)

    def dump(signum, frame):
        with open(os.environ.get("BENCH_GC_OUT", "gc.txt"), "a") as f:
            f.write(" ".join(f"gen{g}: {n} in {s * 1000:.1f} ms" for g, (n, s)
                             in totals.items()) + f" objects {len(gc.get_objects())}\n")

    signal.signal(signal.SIGUSR2, dump)


def _gc_freeze():
    import gc
    import signal
    signal.signal(signal.SIGUSR1, lambda signum, frame: gc.freeze())


_PLAIN = {"lazy-unacked": _lazy_unacked, "tracemalloc": _tracemalloc,
          "no-session-cache": _no_session_cache, "trim": _trim,
          "profile-rest": _profile_between_signals, "gc-stats": _gc_stats,
          "gc-freeze": _gc_freeze, "eager-write": _eager_write,
          "flush-after-read": _flush_after_read}
