"""Commands that talk to a running daemon over its control socket.

Text output is one line per row, every line escaped by ``output.say`` (names, notes,
messages, reasons and addresses come from other hubs and gateways); ``--json`` prints
the daemon's answer as JSON.
"""

import datetime
import json

from blockhub.cli.identity_cmds import data_dir_arg, text_arg
from blockhub.cli.output import say
from blockhub.control.client import call
from blockhub.when import utc


def daemon_command(sub, name, help_text, func, json_output=True):
    """A subcommand on a daemon's data directory, with ``--json`` where it lists."""
    p = sub.add_parser(name, help=help_text)
    data_dir_arg(p)
    if json_output:
        p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=func)
    return p


def register(sub):
    daemon_command(sub, "status", "show a running hub's or gateway's state", cmd_status)
    daemon_command(sub, "hubs", "list the hubs online at the gateway", cmd_hubs)
    daemon_command(sub, "pending", "list requests waiting for your approval", cmd_pending)
    p = daemon_command(sub, "approve", "approve a pending request; this hub then dials",
                 cmd_approve, json_output=False)
    p.add_argument("hub", metavar="HUBID")
    p = daemon_command(sub, "reject", "reject a request that is not yet connected (pending, or "
                 "accepted but still dialing or awaiting the other hub)", cmd_reject,
                 json_output=False)
    p.add_argument("hub", metavar="HUBID")
    p.add_argument("--block", action="store_true",
                   help="also block this hub: its future requests are refused, and an "
                        "existing peering with it ends")
    p = daemon_command(sub, "unpeer", "end the peering with a hub (it may ask again unless "
                 "--block)", cmd_unpeer, json_output=False)
    p.add_argument("hub", metavar="HUBID")
    p.add_argument("--block", action="store_true",
                   help="also block this hub: its links are closed and its future "
                        "requests refused")
    daemon_command(sub, "peers", "list this hub's peers", cmd_peers)
    p = daemon_command(sub, "send", "queue a message to a peer (delivered when connected)",
                 cmd_send, json_output=False)
    p.add_argument("hub", metavar="HUBID")
    p.add_argument("text", metavar="TEXT")
    daemon_command(sub, "messages", "list the messages received, in arrival order", cmd_messages)
    p = daemon_command(sub, "archive", "dump what an --archive hub recorded", cmd_archive,
                 json_output=False)
    p.add_argument("--json", action="store_true", help="print JSON (the default)")


def emit_json(value, stdout):
    print(json.dumps(value, indent=2, sort_keys=True), file=stdout)


def cmd_status(args, stdin, stdout):
    status = call(args.data_dir, "status")
    if args.json:
        emit_json(status, stdout)
        return 0
    say(stdout, f"{status['role']} {status['id']}")
    for key in ("name", "fingerprint", "mode", "listen", "http", "endpoint", "observed",
                "gateway_fingerprint", "online", "online_hubs",
                "peers", "connected_peers"):
        if status.get(key) not in (None, ""):
            say(stdout, f"  {key}: {status[key]}")
    for url, state in sorted(status.get("gateway_lists", {}).items()):
        say(stdout, f"  gateway list {url}: {state}")
    for gw in status.get("gateways", []):
        line = f"  gateway {gw['id']} {gw.get('address') or '-'}: {gw['state']}"
        if gw.get("last_error"):
            line += f" (last error: {gw['last_error']})"
        say(stdout, line)
    for key, value in sorted(status.get("counters", {}).items()):
        say(stdout, f"  {key}: {value}")
    for req in status.get("requests", []):
        arrow = "->" if req["direction"] == "out" else "<-"
        extra = f" ({req['reason']})" if req.get("reason") else ""
        say(stdout, f"  request {arrow} {req['peer']}: {req['state']}{extra}")
    if status.get("circuits"):
        say(stdout, "  circuits: {count} ({bytes} bytes carried)".format(**status["circuits"]))
    cost = status.get("request_difficulty")
    if cost and (cost["setting"] == "auto" or cost["published"]):
        say(stdout, f"  request difficulty: {cost['setting']} (asking {cost['published']} "
                    f"bits, accepting {cost['required']})")
    for reason, count in sorted(status.get("refusals", {}).items()):
        say(stdout, f"  refused ({reason}): {count}")
    for line in _accountability(status):
        say(stdout, "  " + line)
    return 0


def _accountability(status: dict) -> list[str]:
    """Heads, alarms and keys (docs/accountability.md), as lines of ``status``."""
    lines = [f"ALARM {a['kind']} by gateway {a['gateway']} at {utc(a['at'])}: proof "
             f"{a['proof']}" for a in status.get("alarms", [])]
    for gateway_id, row in sorted(status.get("gateway_keys", {}).items()):
        if row.get("succeeded_by"):
            lines.append(f"gateway {gateway_id} moved to {row['succeeded_by']} (followed)")
        elif row.get("next_committed"):
            lines.append(f"gateway {gateway_id} committed to a next key")
        if row.get("refused"):
            lines.append(f"gateway {gateway_id}: refused its {row['refused']['what']}: "
                         f"{row['refused']['reason']}")
    head = status.get("head")
    if head:
        lines.append(f"head {head['seq']}: {head['count']} hubs")
    keys = status.get("keys") or {}
    if keys.get("succeeded"):
        old = keys["succeeded"]
        lines.append(f"succeeded {old['old']}; serving it to hubs that ask until "
                     f"{utc(old['grace_until'])}" if old["serving_old"] else
                     f"succeeded {old['old']} (retired)")
    if keys.get("next_committed"):
        lines.append("committed to a next key")
    return lines


def listing(args, stdout, op, empty, line):
    """A daemon's list: JSON with --json, else one escaped line per row (or ``empty``)."""
    rows = call(args.data_dir, op)
    if args.json:
        emit_json(rows, stdout)
    elif not rows:
        if empty:
            say(stdout, empty)
    else:
        for row in rows:
            say(stdout, line(row))
    return 0


def cmd_hubs(args, stdin, stdout):
    def line(hub):
        where = hub.get("endpoint") or "-"
        if hub.get("address"):  # a gateway's own hub: the address it connects from
            where += f"  from {hub['address']}"
        if hub.get("node"):     # a clustered gateway: a hub of another node
            where += f"  at node {hub['node']}"
        return f"{hub['id']}  {hub.get('name') or '-':<20} {where}"
    return listing(args, stdout, "hubs", "no other hub is online", line)


def _pending_line(req) -> str:
    # A relayed request's address is only what the requester claims; a direct one is
    # where we saw it come from.  Without the key, assume the weaker.
    address = req.get("address")
    if not address:
        where = "no address"
    elif req.get("address_source") == "seen":
        where = f"from {address}"
    else:
        where = f"claims address {address} (unverified)"
    return f"{req['id']}  {where}  note: '{req.get('note') or ''}'"


def cmd_pending(args, stdin, stdout):
    return listing(args, stdout, "pending", "no pending request", _pending_line)


def cmd_approve(args, stdin, stdout):
    result = call(args.data_dir, "approve", hub=text_arg(args.hub, "HUBID"))
    say(stdout, f"approved {result['peer']}: {result['state']}")
    return 0


def cmd_reject(args, stdin, stdout):
    result = call(args.data_dir, "reject", hub=text_arg(args.hub, "HUBID"), block=args.block)
    say(stdout, f"rejected {result['peer']}" + (" and blocked it" if result["blocked"] else ""))
    return 0


def cmd_unpeer(args, stdin, stdout):
    result = call(args.data_dir, "unpeer", hub=text_arg(args.hub, "HUBID"), block=args.block)
    peer = result["peer"]
    line = f"removed peer {peer}" if result.get("removed") else f"{peer} was not a peer"
    say(stdout, line + (" and blocked it" if result.get("blocked") else ""))
    return 0


def cmd_peers(args, stdin, stdout):
    def line(peer):
        state = "connected" if peer["connected"] else "disconnected"
        waiting = f"  ({peer['unacked']} unacknowledged)" if peer.get("unacked") else ""
        where = (f"relayed via {peer['via']}" if peer.get("via") else "relayed") \
            if peer.get("path") == "relayed" else (peer.get("address") or "-")
        return f"{peer['id']}  {where}  {state}{waiting}"

    return listing(args, stdout, "peers", "no peers yet", line)


def cmd_send(args, stdin, stdout):
    result = call(args.data_dir, "send", hub=text_arg(args.hub, "HUBID"),
                  text=text_arg(args.text, "TEXT"))
    say(stdout, f"queued message {result['seq']} to {result['peer']}")
    return 0


def _when(at) -> str:
    """A message's time as UTC, or the raw value when datetime cannot show it (a row
    stored before times were bounded at the schema must not stop the listing)."""
    try:
        return f"{datetime.datetime.fromtimestamp(at, datetime.UTC):%Y-%m-%d %H:%M:%S}Z"
    except (TypeError, ValueError, OverflowError, OSError):
        return f"at {at}"


def cmd_messages(args, stdin, stdout):
    return listing(args, stdout, "messages", None,
                    lambda m: f"[{_when(m['at'])}] {m['from']}: {m['text']}")


def cmd_archive(args, stdin, stdout):
    emit_json(call(args.data_dir, "archive"), stdout)
    return 0
