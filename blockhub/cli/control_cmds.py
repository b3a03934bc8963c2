"""Commands that talk to a running daemon over its control socket."""

import datetime
import json

from blockhub.cli.identity_cmds import data_dir_arg
from blockhub.control.client import call


def register(sub):
    p = sub.add_parser("status", help="show a running hub's or gateway's state")
    data_dir_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("hubs", help="list the hubs online at the gateway")
    data_dir_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_hubs)

    p = sub.add_parser("connect", help="ask another hub to connect (a signed, sealed request)")
    data_dir_arg(p)
    p.add_argument("hub", metavar="HUBID", help="the id of the hub to ask")
    p.add_argument("--note", default="", help="a short note shown to the other operator")
    p.set_defaults(func=cmd_connect)

    p = sub.add_parser("pending", help="list requests waiting for your approval")
    data_dir_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_pending)

    p = sub.add_parser("approve", help="approve a pending request; this hub then dials")
    data_dir_arg(p)
    p.add_argument("hub", metavar="HUBID")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("reject", help="reject a pending request")
    data_dir_arg(p)
    p.add_argument("hub", metavar="HUBID")
    p.add_argument("--block", action="store_true",
                   help="also block this hub: its future requests are refused")
    p.set_defaults(func=cmd_reject)

    p = sub.add_parser("peers", help="list this hub's peers")
    data_dir_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_peers)

    p = sub.add_parser("send", help="queue a message to a peer (delivered when connected)")
    data_dir_arg(p)
    p.add_argument("hub", metavar="HUBID")
    p.add_argument("text", metavar="TEXT")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("messages", help="list the messages received, in arrival order")
    data_dir_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_messages)

    p = sub.add_parser("archive", help="dump what an --archive hub recorded")
    data_dir_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON (the default)")
    p.set_defaults(func=cmd_archive)


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


def cmd_hubs(args, stdin, stdout):
    hubs = call(args.data_dir, "hubs")
    if args.json:
        emit_json(hubs, stdout)
        return 0
    if not hubs:
        print("no other hub is online", file=stdout)
    for hub in hubs:
        print(f"{hub['id']}  {hub.get('name') or '-':<20} {hub.get('endpoint') or '-'}",
              file=stdout)
    return 0


def cmd_connect(args, stdin, stdout):
    result = call(args.data_dir, "connect", hub=args.hub, note=args.note)
    print(f"request to {result['peer']}: {result['state']}"
          + (f" ({result['detail']})" if result.get("detail") else ""), file=stdout)
    return 0


def cmd_pending(args, stdin, stdout):
    pending = call(args.data_dir, "pending")
    if args.json:
        emit_json(pending, stdout)
    elif not pending:
        print("no pending request", file=stdout)
    else:
        for req in pending:
            print(f"{req['id']}  from {req.get('address') or '?'}  note: {req['note']!r}",
                  file=stdout)
    return 0


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
    peers = call(args.data_dir, "peers")
    if args.json:
        emit_json(peers, stdout)
    elif not peers:
        print("no peers yet", file=stdout)
    else:
        for peer in peers:
            state = "connected" if peer["connected"] else "disconnected"
            waiting = f"  ({peer['unacked']} unacknowledged)" if peer.get("unacked") else ""
            print(f"{peer['id']}  {peer.get('address') or '-'}  {state}{waiting}",
                  file=stdout)
    return 0


def cmd_send(args, stdin, stdout):
    result = call(args.data_dir, "send", hub=args.hub, text=args.text)
    print(f"queued message {result['seq']} to {result['peer']}", file=stdout)
    return 0


def cmd_messages(args, stdin, stdout):
    messages = call(args.data_dir, "messages")
    if args.json:
        emit_json(messages, stdout)
    else:
        for m in messages:
            when = datetime.datetime.fromtimestamp(m["at"], datetime.UTC)
            print(f"[{when:%Y-%m-%d %H:%M:%S}Z] {m['from']}: {m['text']}", file=stdout)
    return 0


def cmd_archive(args, stdin, stdout):
    emit_json(call(args.data_dir, "archive"), stdout)
    return 0
