"""``blockhub invite create|list|revoke``, and ``connect``: asking a hub by its id or
with an invite code, and watching a proof of work the receiver asks for.

An invite code is checked here before anything is sent to the hub, so a mistyped one
is refused in one line.  ``connect`` returns once the request is on its way; while the
hub is finding a proof of work it shows how far it got, by polling ``status`` (the
hub goes on with it if this command is interrupted; ``--no-wait`` does not watch).
"""

import time

from blockhub.cli.control_cmds import daemon_command, emit_json, listing
from blockhub.cli.identity_cmds import text_arg
from blockhub.cli.output import say
from blockhub.control.client import call
from blockhub.errors import UserError
from blockhub.invites import decode_invite
from blockhub.when import utc

POLL = 0.5  # seconds between looks at a proof of work under way


def register(sub):
    p = daemon_command(sub, "connect", "ask another hub to connect (a signed, sealed "
                       "request), by its id or with an invite code", cmd_connect,
                       json_output=False)
    p.add_argument("hub", metavar="HUBID", nargs="?", help="the id of the hub to ask")
    p.add_argument("--invite", metavar="CODE",
                   help="an invite code from the other hub's operator (instead of HUBID)")
    p.add_argument("--note", default="", help="a short note shown to the other operator")
    p.add_argument("--no-wait", action="store_true",
                   help="do not watch a proof of work the other hub asks for")
    invite = sub.add_parser("invite", help="invite another hub: codes that connect in one go")
    verbs = invite.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    p = daemon_command(verbs, "create", "make an invite code (shown once)", cmd_create)
    p.add_argument("--uses", type=int, default=1, metavar="N",
                   help="how many hubs may use it (default 1)")
    p.add_argument("--ttl", type=int, default=86400, metavar="SECONDS",
                   help="how long it stays valid (default 86400: a day)")
    p.add_argument("--note", default="", help="a note for yourself (invite list)")
    daemon_command(verbs, "list", "list the invites this hub made", cmd_list)
    p = daemon_command(verbs, "revoke", "refuse every later use of an invite", cmd_revoke,
                       json_output=False)
    p.add_argument("id", metavar="ID", help="the invite's id (invite list)")


def cmd_connect(args, stdin, stdout):
    note = text_arg(args.note, "--note")
    if (args.hub is None) == (args.invite is None):
        raise UserError("give either HUBID or --invite CODE")
    if args.invite is not None:
        code = text_arg(args.invite, "--invite")
        decode_invite(code)  # a mistyped code stops here, in one line
        result = call(args.data_dir, "connect", invite=code, note=note)
        for gateway in result.get("pinned", []):
            say(stdout, f"pinned gateway {gateway} (from invite {result['invite']})")
    else:
        result = call(args.data_dir, "connect", hub=text_arg(args.hub, "HUBID"), note=note)
    say(stdout, f"request to {result['peer']}: {result['state']}"
        + (f" ({result['detail']})" if result.get("detail") else ""))
    if result["state"] == "working" and not args.no_wait:
        _watch_work(args.data_dir, result["peer"], stdout)
    return 0


def _request(data_dir, peer: str) -> dict | None:
    for row in call(data_dir, "status").get("requests", []):
        if row["direction"] == "out" and row["peer"] == peer:
            return row
    return None


def _watch_work(data_dir, peer: str, stdout) -> None:
    """Show the proof of work's progress until the request leaves ``working``."""
    while True:
        row = _request(data_dir, peer)
        if row is None or row["state"] != "working":
            state = row["state"] if row else "gone"
            say(stdout, f"request to {peer}: {state}")
            return
        work = row.get("work")
        if work:
            share = 100 * work["tries"] / max(1, work["expected"])
            say(stdout, f"  proof of work of {work['bits']} bits: {work['tries']} tries, "
                        f"{share:.0f}% of the average needed")
        time.sleep(POLL)


def cmd_create(args, stdin, stdout):
    result = call(args.data_dir, "invite_create", uses=args.uses, ttl=args.ttl,
                  note=text_arg(args.note, "--note"))
    if args.json:
        emit_json(result, stdout)
        return 0
    say(stdout, result["code"])
    say(stdout, f"  invite {result['id']}: {result['uses']} use(s), valid until "
                f"{utc(result['expires'])}; give the code only to whom you invite")
    return 0


def cmd_list(args, stdin, stdout):
    return listing(args, stdout, "invite_list", "no invites",
                   lambda i: f"{i['id']}  {i['state']}  {i['uses']} use(s) left  until "
                             f"{utc(i['expires'])}  note: '{i['note']}'")


def cmd_revoke(args, stdin, stdout):
    result = call(args.data_dir, "invite_revoke", id=text_arg(args.id, "ID"))
    say(stdout, f"revoked invite {result['id']}")
    return 0
