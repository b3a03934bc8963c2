"""Commands that talk to a running daemon over its control socket."""

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


def emit_json(value, stdout):
    print(json.dumps(value, indent=2, sort_keys=True), file=stdout)


def cmd_status(args, stdin, stdout):
    status = call(args.data_dir, "status")
    if args.json:
        emit_json(status, stdout)
        return 0
    print(f"{status['role']} {status['id']}", file=stdout)
    for key in ("name", "mode", "listen", "observed", "online", "online_hubs"):
        if status.get(key) not in (None, ""):
            print(f"  {key}: {status[key]}", file=stdout)
    for gw in status.get("gateways", []):
        line = f"  gateway {gw['id']} {gw.get('address') or '-'}: {gw['state']}"
        if gw.get("last_error"):
            line += f" (last error: {gw['last_error']})"
        print(line, file=stdout)
    for key, value in sorted(status.get("counters", {}).items()):
        print(f"  {key}: {value}", file=stdout)
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
