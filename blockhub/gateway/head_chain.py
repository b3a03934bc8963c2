"""The gateway's chain of signed presence heads (docs/accountability.md).

Every ``interval`` seconds, if the online set changed since the last head, the gateway
writes out the other nodes' presence that waits (so every hub has been told all that
the head commits to), signs the next head over its online set as its hubs see it
(its own hubs and, in a cluster, the other nodes' hubs), stores it durably, and only
then sends it to each hub that listed ``heads/1``.  Stored first, so an honest gateway
never signs two heads with one ``seq``, across restarts and crashes: the chain goes
on from the head in its file (``head_file``).
"""

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from blockhub.heads import Head, SetEncoder, make_head
from blockhub.wire import canonical, features

log = Logger()
DEFAULT_INTERVAL = 10.0


class HeadChain:
    def __init__(self, identity, clock, presence, file=None,
                 interval: float = DEFAULT_INTERVAL):
        """``file``: a ``HeadFile`` (None: the chain lives in memory only, for tests)."""
        self.identity = identity
        self.clock = clock
        self.presence = presence
        self.file = file
        self.interval = interval
        self.latest: Head | None = file.load(identity.id) if file is not None else None
        self._seen_version = -1
        self._set = SetEncoder()
        self._loop = LoopingCall(self.tick)
        self._loop.clock = clock

    def rekey(self, identity) -> None:
        """We rotated to ``identity``: its chain starts anew (or goes on from its file)."""
        if self.file is not None:
            self.file.succeeded.add(self.identity.id)
        self.identity = identity
        self.latest = self.file.load(identity.id) if self.file is not None else None
        self._seen_version = -1

    def start(self) -> None:
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def tick(self) -> None:
        """Sign the next head when the online set changed (a cheap version check first:
        nothing is hashed while nobody comes or goes)."""
        version = self.presence.version
        if version == self._seen_version:
            return
        self.presence.flush_remote()
        infos = self.presence.online_infos()
        commitment = self._set.commitment(infos)
        latest = self.latest
        if latest is not None and latest.set == canonical.b64(commitment):
            self._seen_version = version  # came and went again: the set is the last head's
            return
        head = make_head(self.identity, latest.seq + 1 if latest else 1,
                         int(self.clock.seconds() * 1000), len(infos), commitment,
                         latest.hash if latest else None)
        if not self._store(head):
            return  # tried again at the next tick
        self.latest, self._seen_version = head, version
        frame = head.to_json()
        for conn, _info in list(self.presence.hubs.values()):
            if conn.session.features.peer_has(features.HEADS):
                conn.send("head", head=frame)

    def _store(self, head: Head) -> bool:
        if self.file is None:
            return True
        try:
            self.file.save(head)
        except OSError as e:
            log.error("cannot store head {seq} in {path}: {error}; it is not sent",
                      seq=head.seq, path=str(self.file.path), error=str(e))
            return False
        return True
