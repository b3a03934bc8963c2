"""The gateways a hub pins, as a list it changes while it runs: an address a signed
record moved, the gateways an invite brought, a key a succession replaced, and the rows
``status`` shows.

The link machine (``GatewayLink``) decides when to connect where; this only changes
its list and tells it (``current_moved``, ``go_to``).
"""

import attrs


def move(link, gateway_id: str, host: str, port: int):
    """A signed record says this gateway is elsewhere now: use that address from the
    next attempt on (at once, when the link waits to retry it).  Returns the new entry,
    or None when nothing changed."""
    if gateway_id in link.distrusted:
        return None
    for i, entry in enumerate(link.gateways):
        if entry.id == gateway_id and (entry.host, entry.port) != (host, port):
            link.gateways[i] = attrs.evolve(entry, host=host, port=port)
            if i == link.index:
                link.current_moved()
            return link.gateways[i]
    return None


def pin(link, entries, invite_id: str, record=None) -> list:
    """Add an invite's gateways (``record(added, invite_id)`` keeps them) and, unless
    the link is online at one of them, go to the first now; the ids of those added."""
    known = {e.id for e in link.gateways}
    added = [e for e in entries if e.id not in known]
    link.gateways.extend(added)
    if added and record is not None:
        record(added, invite_id)
    ids = {e.id for e in entries}
    if not (link.state == "online" and link.current.id in ids):
        link.go_to(next(i for i, e in enumerate(link.gateways) if e.id in ids))
    return [e.id for e in added]


def succeed(link, old_id: str, new_id: str) -> bool:
    """The gateway we pin as ``old_id`` moved to ``new_id`` (a succession we checked):
    pin the new key in its place and, when it is the current gateway, connect to it
    now (from online at once; while connecting, once this attempt ends)."""
    for i, entry in enumerate(link.gateways):
        if entry.id == old_id:
            link.gateways[i] = attrs.evolve(entry, id=new_id)
            if i == link.index:
                link.go_to(i)
            return True
    return False


def gateway_rows(link) -> list[dict]:
    """Each pinned gateway, its address, and the link's state at the current one."""
    rows = []
    for i, entry in enumerate(link.gateways):
        row = {"id": entry.id, "name": entry.name, "address": entry.address,
               "state": link.state if i == link.index else "standby"}
        if entry.id in link.last_error:
            row["last_error"] = link.last_error[entry.id]
        rows.append(row)
    return rows



def drop(link, gateway_id: str) -> bool:
    """Stop using a gateway caught lying: forget its address (a signed record cannot
    bring it back) and, when it is current, fail over now; False when it is the only
    one pinned, which then stays (there is nothing to fail over to)."""
    index = next((i for i, e in enumerate(link.gateways) if e.id == gateway_id), None)
    if index is None or len(link.gateways) == 1:
        return False
    link.distrusted.add(gateway_id)
    link.gateways[index] = attrs.evolve(link.gateways[index], host=None)
    if index == link.index:
        link.go_to((index + 1) % len(link.gateways))
    return True
