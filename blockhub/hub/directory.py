"""The hub's list of online hubs, built from the gateway's presence messages.

Every HubInfo is verified against its own hub's signature before it is believed; an
older ``seq`` never replaces a newer one.  The list is emptied when the gateway link
drops, since it then no longer says who is online.
"""

from twisted.logger import Logger

from blockhub.errors import BadMessage
from blockhub.hubinfo import HubInfo, verify_hubinfo

log = Logger()


class Directory:
    def __init__(self, own_id: str, observer=None):
        self.own_id = own_id
        self.hubs: dict[str, HubInfo] = {}
        self.observer = observer  # called with (event, hub id, HubInfo | None)

    def apply(self, message) -> None:
        event, hub_id = message["event"], message["hub"]
        if event == "left":
            if self.hubs.pop(hub_id, None) is not None:
                self._notify("left", hub_id, None)
            return
        if message["hubinfo"] is None:
            raise BadMessage(f"presence {event} without hubinfo")
        info = verify_hubinfo(message["hubinfo"])
        if info.id != hub_id:
            raise BadMessage("presence names one hub but carries another's hubinfo")
        if hub_id == self.own_id:
            return
        current = self.hubs.get(hub_id)
        if current is not None and info.seq < current.seq:
            return
        self.hubs[hub_id] = info
        self._notify(event, hub_id, info)

    def clear(self) -> None:
        self.hubs.clear()

    def _notify(self, event, hub_id, info):
        if self.observer is not None:
            self.observer(event, hub_id, info)

    def snapshot(self) -> list[dict]:
        return [{"id": info.id, "name": info.name, "endpoint": info.endpoint,
                 "meta": info.meta, "seq": info.seq}
                for info in sorted(self.hubs.values(), key=lambda i: (i.name, i.id))]
