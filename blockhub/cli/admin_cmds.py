"""A gateway operator's commands: ``kick``, ``bans``, ``unban`` (over the gateway's
control socket; in a cluster they act on every node)."""

from blockhub.cli.control_cmds import daemon_command, emit_json, listing
from blockhub.cli.identity_cmds import text_arg
from blockhub.cli.output import say
from blockhub.control.client import call
from blockhub.when import utc


def register(sub):
    p = daemon_command(sub, "kick", "close a hub's connection to this gateway (in a cluster, "
                 "wherever it is); with --ban, refuse it until the ban ends", cmd_kick)
    p.add_argument("hub", metavar="HUBID")
    p.add_argument("--ban", metavar="SECONDS", type=float,
                   help="also refuse this hub for SECONDS, at every node, across restarts")
    daemon_command(sub, "bans", "list the hubs this gateway refuses, and until when", cmd_bans)
    p = daemon_command(sub, "unban", "let a banned hub join again", cmd_unban)
    p.add_argument("hub", metavar="HUBID")


def cmd_kick(args, stdin, stdout):
    result = call(args.data_dir, "kick", hub=text_arg(args.hub, "HUBID"), ban=args.ban)
    if args.json:
        emit_json(result, stdout)
        return 0
    line = f"kicked {result['id']}" if result["kicked"] else f"{result['id']} was not online"
    if result["until"] is not None:
        line += f"; banned until {utc(result['until'])}"
    say(stdout, line)
    return 0


def cmd_bans(args, stdin, stdout):
    return listing(args, stdout, "bans", "no hub is banned",
                    lambda ban: f"{ban['id']}  until {utc(ban['until'])}")


def cmd_unban(args, stdin, stdout):
    result = call(args.data_dir, "unban", hub=text_arg(args.hub, "HUBID"))
    if args.json:
        emit_json(result, stdout)
    else:
        say(stdout, f"unbanned {result['id']}")
    return 0
