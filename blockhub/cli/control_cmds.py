"""Commands that talk to a running daemon over its control socket."""

import datetime
import json

from blockhub.cli.identity_cmds import data_dir_arg
from blockhub.control.client import call


def _command(sub, name, help_text, func, json_output=True):
    """A subcommand on a daemon's data directory, with ``--json`` where it lists."""
    p = sub.add_parser(name, help=help_text)
    data_dir_arg(p)
    if json_output:
        p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=func)
    return p


def register(sub):
    _command(sub, "status", "show a running hub's or gateway's state", cmd_status)
    _command(sub, "hubs", "list the hubs online at the gateway", cmd_hubs)
    p = _command(sub, "connect", "ask another hub to connect (a signed, sealed request)",
                 cmd_connect, json_output=False)
    p.add_argument("hub", metavar="HUBID", help="the id of the hub to ask")
    p.add_argument("--note", default="", help="a short note shown to the other operator")
    _command(sub, "pending", "list requests waiting for your approval", cmd_pending)
    p = _command(sub, "approve", "approve a pending request; this hub then dials",
                 cmd_approve, json_output=False)
    p.add_argument("hub", metavar="HUBID")
    p = _command(sub, "reject", "reject a pending request", cmd_reject, json_output=False)
    p.add_argument("hub", metavar="HUBID")
    p.add_argument("--block", action="store_true",
                   help="also block this hub: its future requests are refused")
    _command(sub, "peers", "list this hub's peers", cmd_peers)
    p = _command(sub, "send", "queue a message to a peer (delivered when connected)",
                 cmd_send, json_output=False)
    p.add_argument("hub", metavar="HUBID")
    p.add_argument("text", metavar="TEXT")
    _command(sub, "messages", "list the messages received, in arrival order", cmd_messages)
    p = _command(sub, "archive", "dump what an --archive hub recorded", cmd_archive,
                 json_output=False)
    p.add_argument("--json", action="store_true", help="print JSON (the default)")


def emit_json(value, stdout):
    print(json.dumps(value, indent=2, sort_keys=True), file=stdout)


def cmd_status(args, stdin, stdout):
    status = call(args.data_dir, "status")
    if args.json:
        emit_json(status, stdout)
        return 0
    print(f"{status['role']} {status['id']}", file=stdout)
    for key in ("name", "fingerprint", "mode", "listen", "http", "endpoint", "observed",
                "gateway_fingerprint", "online", "online_hubs",
                "peers", "connected_peers"):
        if status.get(key) not in (None, ""):
            print(f"  {key}: {status[key]}", file=stdout)
    for gw in status.get("gateways", []):
        line = f"  gateway {gw['id']} {gw.get('address') or '-'}: {gw['state']}"
        if gw.get("last_error"):
            line += f" (last error: {gw['last_error']})"
        print(line, file=stdout)
    for key, value in sorted(status.get("counters", {}).items()):
        print(f"  {key}: {value}", file=stdout)
    for req in status.get("requests", []):
        arrow = "->" if req["direction"] == "out" else "<-"
        extra = f" ({req['reason']})" if req.get("reason") else ""
        print(f"  request {arrow} {req['peer']}: {req['state']}{extra}", file=stdout)
    for reason, count in sorted(status.get("refusals", {}).items()):
        print(f"  refused ({reason}): {count}", file=stdout)
    return 0


def _listing(args, stdout, op, empty, line):
    """A daemon's list: JSON with --json, else one line per row (or ``empty``)."""
    rows = call(args.data_dir, op)
    if args.json:
        emit_json(rows, stdout)
    elif not rows:
        if empty:
            print(empty, file=stdout)
    else:
        for row in rows:
            print(line(row), file=stdout)
    return 0


def cmd_hubs(args, stdin, stdout):
    return _listing(args, stdout, "hubs", "no other hub is online", lambda hub:
                    f"{hub['id']}  {hub.get('name') or '-':<20} {hub.get('endpoint') or '-'}")


def cmd_connect(args, stdin, stdout):
    result = call(args.data_dir, "connect", hub=args.hub, note=args.note)
    print(f"request to {result['peer']}: {result['state']}"
          + (f" ({result['detail']})" if result.get("detail") else ""), file=stdout)
    return 0


def cmd_pending(args, stdin, stdout):
    return _listing(args, stdout, "pending", "no pending request", lambda req:
                    f"{req['id']}  from {req.get('address') or '?'}  note: {req['note']!r}")


def cmd_approve(args, stdin, stdout):
    result = call(args.data_dir, "approve", hub=args.hub)
    print(f"approved {result['peer']}: {result['state']}", file=stdout)
    return 0


def cmd_reject(args, stdin, stdout):
    result = call(args.data_dir, "reject", hub=args.hub, block=args.block)
    print(f"rejected {result['peer']}" + (" and blocked it" if result["blocked"] else ""),
          file=stdout)
    return 0


def cmd_peers(args, stdin, stdout):
    def line(peer):
        state = "connected" if peer["connected"] else "disconnected"
        waiting = f"  ({peer['unacked']} unacknowledged)" if peer.get("unacked") else ""
        return f"{peer['id']}  {peer.get('address') or '-'}  {state}{waiting}"

    return _listing(args, stdout, "peers", "no peers yet", line)


def cmd_send(args, stdin, stdout):
    result = call(args.data_dir, "send", hub=args.hub, text=args.text)
    print(f"queued message {result['seq']} to {result['peer']}", file=stdout)
    return 0


def cmd_messages(args, stdin, stdout):
    def line(m):
        when = datetime.datetime.fromtimestamp(m["at"], datetime.UTC)
        return f"[{when:%Y-%m-%d %H:%M:%S}Z] {m['from']}: {m['text']}"

    return _listing(args, stdout, "messages", None, line)


def cmd_archive(args, stdin, stdout):
    emit_json(call(args.data_dir, "archive"), stdout)
    return 0
