"""Messages received from peers: committed in groups, acknowledged once committed.

What arrives is committed together (one fsync) on the store's writer, one commit at a
time; what arrives while a commit runs goes into the next (``GroupCommit``), so the
reactor keeps reading, and crediting a relay circuit, while the disk works.  Each
connection gets one acknowledgement per commit, with the highest seq it had in it
(an ack covers every message up to it), and only once the commit is done.
Duplicates, by (sender, seq), are dropped by the store.
"""

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from blockhub.errors import StoreError
from blockhub.hub.group_commit import GroupCommit

log = Logger()


class Inbox:
    def __init__(self, store, clock):
        self.store = store
        self.clock = clock
        self.storage_errors = 0  # commits the disk refused (received messages and acks)
        self._arrived = GroupCommit(clock, self._commit)  # (protocol, message)

    def received(self, proto, message) -> None:
        self._arrived.add((proto, message))

    def forget(self, hub_id: str) -> None:
        """Drop what ``hub_id`` sent that is not being committed yet."""
        self._arrived.keep(lambda item: item[0].peer_id != hub_id)

    def _commit(self, batch) -> Deferred:
        """Commit what arrived, then acknowledge.  If the disk refuses, no
        acknowledgement goes out and the links are closed: the senders keep the
        messages and send them again.  When the whole batch fails, each connection's
        messages are tried on their own, in turn, so one peer's bad message never costs
        another peer's their acknowledgement."""
        by_proto: dict = {}
        for proto, message in batch:
            by_proto.setdefault(proto, []).append((proto, message))

        def refuse(failure, proto):
            failure.trap(StoreError)
            self._refuse(proto)

        def failed(failure):
            failure.trap(StoreError)
            if len(by_proto) == 1:
                return refuse(failure, next(iter(by_proto)))
            d = Deferred()
            for proto, part in by_proto.items():
                d.addCallback(lambda _, proto=proto, part=part:
                              self._store_batch(part).addErrback(refuse, proto))
            d.callback(None)
            return d

        return self._store_batch(batch).addErrback(failed)

    def _store_batch(self, batch) -> Deferred:
        """Commit ``batch`` and acknowledge it; a StoreError is counted and logged,
        then passed on."""
        rows = [(p.peer_id, m["seq"], m["text"], m["at"]) for p, m in batch]
        d = self.store.commit_received(rows, int(self.clock.seconds()))
        d.addCallback(lambda _: self._acknowledge(batch))
        return d.addErrback(self._store_failed, batch)

    def _store_failed(self, failure, batch):
        failure.trap(StoreError)
        self.storage_errors += 1
        log.error("cannot store {n} message(s): {error}", n=len(batch),
                  error=failure.getErrorMessage())
        return failure

    def _refuse(self, proto):
        """Its messages could not be stored: forget those still waiting (an ack for a
        later one would cover them) and close, so that it sends them all again."""
        self._arrived.keep(lambda item: item[0] is not proto)
        proto.close("storage error on our side; try again later")

    @staticmethod
    def _acknowledge(batch):
        highest: dict = {}
        for proto, message in batch:
            highest[proto] = max(message["seq"], highest.get(proto, 0))
        for proto, seq in highest.items():
            proto.send("ack", seq=seq)
