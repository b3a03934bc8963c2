"""Packet counters on a lab host, made of nftables named counters: what a scenario
uses to show that no packet at all went between two addresses, not only that no
connection was made.

``count_packets(lab, host, incoming={name: address}, outgoing={name: address})`` adds,
in the host's namespace, an ``inet`` table whose ``prerouting`` chain counts every
packet arriving from ``address`` (before any routing, filtering or conntrack: even one
that would be dropped is counted) and whose ``output`` chain counts every packet the
host sends to ``address``.  ``packets(lab, host)`` reads them all.  The table goes with
the namespace when the lab is removed.
"""

import ipaddress
import json
import re

TABLE = "bhcount"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


def _rules(hook: str, field: str, counters: dict[str, str]) -> str:
    lines = [f"    chain {hook} {{",
             f"        type filter hook {hook} priority raw; policy accept;"]
    lines += [f'        ip {field} {ipaddress.ip_address(address)} counter name "{name}"'
              for name, address in counters.items()]
    return "\n".join([*lines, "    }"])


def count_packets(lab, host: str, incoming: dict[str, str] | None = None,
                  outgoing: dict[str, str] | None = None) -> None:
    """Start counting, on ``host``, packets from (``incoming``) and to (``outgoing``)
    each address, under the counter names given (unique over both)."""
    incoming, outgoing = incoming or {}, outgoing or {}
    names = [*incoming, *outgoing]
    if len(set(names)) != len(names) or not all(_NAME.match(n) for n in names):
        raise ValueError(f"counter names are unique, [a-z][a-z0-9_]*: {names}")
    parts = [f"table inet {TABLE} {{"]
    parts += [f"    counter {name} {{ }}" for name in names]
    parts += [_rules("prerouting", "saddr", incoming), _rules("output", "daddr", outgoing),
              "}", ""]
    lab.run(host, ["nft", "-f", "-"], input="\n".join(parts))


def packets(lab, host: str) -> dict[str, int]:
    """Every counter of ``host``'s table: its name and the packets it counted."""
    done = lab.run(host, ["nft", "-j", "list", "counters", "table", "inet", TABLE])
    items = json.loads(done.stdout)["nftables"]
    return {item["counter"]["name"]: item["counter"]["packets"]
            for item in items if "counter" in item}
