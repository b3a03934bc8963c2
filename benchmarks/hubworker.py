"""A process hosting several real blockhub hubs, each built by ``make_hub_service`` (the
code ``twistd blockhub-hub`` runs) from options parsed by the hub plugin itself, each
with its own data directory, sealed identity, SQLite store (WAL, full sync), gateway
link, peer listener and control socket.  Only the driving is in-process: where the CLI
would call ``control_connect`` or ``control_send`` over the control socket, this
process calls the same ``Handshakes.connect`` and ``Peers.send`` directly, and it
watches ``Peers.attach`` and ``Peers.acked`` to timestamp links and acknowledgements.

With ``peer_path`` "relay" a hub is made as ``--peer-path relay`` makes it (no
``--listen``: every peering over a relay circuit through the gateway).  Each hub's
``Circuits.connect`` (the TLS client asking the gateway for a circuit) is timestamped
too (``circuit_asked``).

Commands (JSON lines on stdin; events on stdout):
  hubs     {count, gateway, prefix, peer_path} -> hubs {ids, first, dirs} (all online)
  approve  {ids}                         -> approved          (every local hub, like --approve-key)
  connect  {pairs: [[index, peer id]]}   -> connecting {items: [[hub, peer, t0]]}
           and later, from either side,  -> attached {hub, peer, t, path}
           and from a TLS client asking  -> circuit_asked {hub, peer, t}
  send     {index, peer, count, size, window} -> send_done {t_first, t_last, n}
  profile  {on}                          -> profiling {on}    (with --profile: only these spans)
"""

import argparse
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import experiments  # noqa: E402
from twisted.internet import reactor  # noqa: E402
from workerio import emit, serve  # noqa: E402

now = time.monotonic


def hub_options(data_dir, gateway, peer_path="auto"):
    """Options exactly as ``twistd blockhub-hub`` would parse them."""
    from blockhub.hub.tap import Options
    options = Options()
    argv = ["--data-dir", data_dir, "--gateway", gateway]
    if peer_path == "relay":
        argv += ["--peer-path", "relay"]  # takes no --listen
    else:
        argv += ["--listen", "tcp:0:interface=127.0.0.1"]
    options.parseOptions(argv)
    return options


class HubWorker:
    def __init__(self, root):
        self.root = root
        self.services = []
        self.dirs = []  # each service's data directory (its control socket is there)
        self.sending = None
        reactor.addSystemEventTrigger("before", "shutdown", self.stop_all)

    def stop_all(self):
        for s in self.services:
            try:
                s.stopService()
            except Exception:
                traceback.print_exc()

    def cmd_hubs(self, count, gateway, prefix="h", peer_path="auto", **_):
        from blockhub import keystore
        from blockhub.hub.service import make_hub_service
        from blockhub.identity import new_phrase
        keyring = os.environ["BLOCKHUB_KEYRING"]
        made = []
        for i in range(count):
            name = f"{prefix}{len(self.services)}"
            data_dir = os.path.join(self.root, name)
            keystore.create_identity(data_dir, new_phrase(), name=name, keyring=keyring)
            service = make_hub_service(hub_options(data_dir, gateway, peer_path), reactor)
            self._instrument(service)
            self.services.append(service)
            self.dirs.append(data_dir)
            made.append(service)
        # Start in small batches: the gateway limits unauthenticated connections per
        # address, and these hubs all dial from 127.0.0.1.
        self._start_batches(made, 0)

    def _start_batches(self, made, first, batch=16):
        for s in made[first:first + batch]:
            s.startService()
        deadline = now() + 60

        def check():
            waiting = [s for s in made[:first + batch] if s.hub.gateway is None]
            if waiting and now() < deadline:
                reactor.callLater(0.05, check)
            elif waiting:
                emit("error", error=f"{len(waiting)} hubs not online within 60 s")
            elif first + batch < len(made):
                self._start_batches(made, first + batch, batch)
            else:
                start = self.services.index(made[0])
                emit("hubs", ids=[s.hub.identity.id for s in made], first=start,
                     dirs=self.dirs[start:start + len(made)])

        check()

    def _instrument(self, service):
        from blockhub.hub.peer_paths import path_of
        peers, circuits = service.peers, service.circuits
        own = service.hub.identity.id
        attach, acked, ask = peers.attach, peers.acked, circuits.connect

        def attach_and_note(proto):
            result = attach(proto)
            emit("attached", hub=own, peer=proto.peer_id, t=now(), path=path_of(proto))
            return result

        def ask_and_note(peer, first):
            emit("circuit_asked", hub=own, peer=peer, t=now())
            proto, d = ask(peer, first)

            def failed(failure):
                emit("circuit_failed", hub=own, peer=peer, t=now(),
                     reason=failure.getErrorMessage())
                return failure

            return proto, d.addErrback(failed)

        def acked_and_note(proto, seq):
            result = acked(proto, seq)
            if self.sending is not None and self.sending["service"] is service:
                self._acked(seq)
            return result

        peers.attach = attach_and_note
        peers.acked = acked_and_note
        circuits.connect = ask_and_note

    profiler = None
    profiled = False  # True once a 'profile' command came: only its spans count

    def cmd_profile(self, on, **_):
        """Profile only from ``on`` to ``off`` (with --profile; spans add up)."""
        if self.profiler is not None:
            if not self.profiled:
                self.profiler.disable()
                self.profiler.clear()
                self.profiled = True
            self.profiler.enable() if on else self.profiler.disable()
        emit("profiling", on=on)

    def cmd_approve(self, ids, **_):
        for s in self.services:
            stamp = int(reactor.seconds())
            for hub_id in ids:
                s.store.add_approved_key(hub_id, stamp)
        emit("approved", n=len(ids))

    def cmd_connect(self, pairs, **_):
        items = []
        for index, peer in pairs:
            s = self.services[index]
            t0 = now()
            s.operator.connect(peer, "benchmark")
            items.append([s.hub.identity.id, peer, t0])
        emit("connecting", items=items)

    def cmd_send(self, index, peer, count, size, window=1024, batch=64, **_):
        """Queue ``count`` messages of ``size`` characters to ``peer`` through
        ``Peers.send`` (stored, then sent; at most ``window`` unacknowledged queued,
        ``batch`` per reactor turn); ``send_done`` at the last acknowledgement."""
        s = self.services[index]
        text = "m" * size
        self.sending = {"service": s, "peer": peer, "count": count, "text": text,
                        "window": window, "batch": batch, "sent": 0, "acked": 0,
                        "first_seq": None, "last_seq": None, "t_first": now()}
        self._pump()

    def _pump(self):
        st = self.sending
        if st is None:
            return
        send = st["service"].peers.send

        def queued(seq):
            if st["first_seq"] is None:
                st["first_seq"] = seq
            st["last_seq"] = seq

        n = 0
        while (st["sent"] < st["count"] and st["sent"] - st["acked"] < st["window"]
               and n < st["batch"]):
            send(st["peer"], st["text"]).addCallback(queued)  # seq once committed
            st["sent"] += 1
            n += 1
        if st["sent"] < st["count"] and st["sent"] - st["acked"] < st["window"]:
            reactor.callLater(0, self._pump)

    def _acked(self, seq):
        st = self.sending
        if st["first_seq"] is None or seq < st["first_seq"]:
            return
        before = st["sent"] - st["acked"] >= st["window"]
        st["acked"] = seq - st["first_seq"] + 1
        if st["acked"] >= st["count"]:
            self.sending = None
            emit("send_done", t_first=st["t_first"], t_last=now(), n=st["acked"])
        elif before and st["sent"] - st["acked"] < st["window"]:
            reactor.callLater(0, self._pump)




def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--lifetime", type=float, default=1800.0)
    p.add_argument("--profile", help="write cProfile statistics here: of the whole run, "
                                     "or only between 'profile' commands if any comes")
    p.add_argument("--log", help="write the hubs' log here (BENCH_HUB_LOG=1 in the "
                                 "benchmarks: ROOT.log)")
    args = p.parse_args()
    if args.log or os.environ.get("BENCH_HUB_LOG"):
        from twisted.logger import globalLogBeginner, textFileLogObserver
        out = open(args.log or args.root.rstrip("/") + ".log", "a")
        globalLogBeginner.beginLoggingTo([textFileLogObserver(out)],
                                         redirectStandardIO=False)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.makedirs(args.root, exist_ok=True)
    experiments.apply()
    worker = HubWorker(args.root)
    serve(worker)
    reactor.callLater(args.lifetime, reactor.stop)
    reactor.callWhenRunning(emit, "ready", pid=os.getpid())
    if args.profile:
        import cProfile
        worker.profiler = profiler = cProfile.Profile()
        profiler.enable()
        reactor.run()
        profiler.disable()
        profiler.dump_stats(args.profile)
    else:
        reactor.run()


if __name__ == "__main__":
    main()
