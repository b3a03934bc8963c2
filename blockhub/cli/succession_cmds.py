"""A gateway operator's key succession (docs/accountability.md): ``commit-next`` names
the next key in advance, ``rotate-key`` moves the gateway to it, running or stopped.

The next key's secret is made elsewhere (``blockhub init`` on another machine) and
brought here only to rotate: a thief with a copy of the gateway's data directory and
key ring then holds nothing that can lead its hubs to another key.
"""

import json
import os
import time
from pathlib import Path

from blockhub import keystore
from blockhub.cli.output import say
from blockhub.control.client import NoDaemon, call
from blockhub.errors import BadId, UserError
from blockhub.gateway import key_files
from blockhub.identity import Identity
from blockhub.ids import normalise_id

NEXT_PASSPHRASE_ENV = "BLOCKHUB_NEXT_PASSPHRASE"


def register(sub):
    p = sub.add_parser("commit-next", help="make a gateway commit, in its records and to "
                       "its hubs, to the key it will rotate to")
    p.add_argument("--data-dir", required=True, type=Path, metavar="GATEWAY_DIR")
    p.add_argument("--next", required=True, metavar="ID",
                   help="the next key's id (blockhub id --data-dir NEXT_DIR)")
    p.add_argument("--replace", action="store_true",
                   help="replace a commitment to another key (hubs that saw it refuse)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_commit_next)

    p = sub.add_parser("rotate-key", help="move a gateway to the key it committed to; its "
                       "hubs follow")
    p.add_argument("--data-dir", required=True, type=Path, metavar="GATEWAY_DIR")
    p.add_argument("--next", required=True, type=Path, metavar="NEXT_DIR",
                   help="the next identity's data directory (from blockhub init)")
    p.add_argument("--next-keyring", type=Path, metavar="DIR",
                   help="the key ring NEXT_DIR is sealed under, when not ours (or seal it "
                        f"under a passphrase and set ${NEXT_PASSPHRASE_ENV})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_rotate_key)


def _tell_daemon(data_dir: Path):
    """The running gateway's keys after it reloaded them; None when it is stopped."""
    try:
        return call(data_dir, "reload_keys")
    except NoDaemon:
        return None


def _cluster_running(data_dir: Path) -> bool:
    try:
        return "cluster" in call(data_dir, "status")
    except NoDaemon:
        return False


def _emit(args, stdout, result: dict, line: str) -> None:
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True), file=stdout)
    else:
        say(stdout, line)


def cmd_commit_next(args, stdin, stdout):
    try:
        next_id = normalise_id(args.next)
    except BadId as e:
        raise UserError(f"--next: {e}")
    identity = keystore.load_identity(args.data_dir)
    commitment = key_files.commit_next(args.data_dir, identity, next_id, int(time.time()),
                                       args.replace)
    running = _tell_daemon(args.data_dir) is not None
    when = "its hubs hear of it now" if running else "its hubs hear of it when it starts"
    _emit(args, stdout, {"gateway": identity.id, "next": next_id,
                         "digest": commitment.next, "running": running},
          f"gateway {identity.id} committed to its next key {next_id}; {when}; rotate "
          "once they have (blockhub rotate-key)")
    return 0


def _next_identity(args):
    passphrase = os.environ.get(NEXT_PASSPHRASE_ENV) or None
    phrase = keystore.load_phrase(args.next, args.next_keyring, passphrase)
    identity = Identity.from_phrase(phrase)
    if identity.id != keystore.read_record(args.next)["id"]:
        raise UserError(f"identity file in {args.next} does not match its sealed phrase")
    return identity, phrase


def cmd_rotate_key(args, stdin, stdout):
    data_dir = args.data_dir
    new, phrase = _next_identity(args)
    record = keystore.read_record(data_dir)
    if record["id"] == new.id:  # done before, perhaps cut short after the new identity
        succession = key_files.read_succession(data_dir)
        if succession is None or succession.new != new.id:
            raise UserError(f"{data_dir} already holds {new.id} and no succession to it")
        (data_dir / key_files.NEXT_FILE).unlink(missing_ok=True)
    else:
        if _cluster_running(data_dir):
            raise UserError("a cluster node rotates its key only while stopped: stop it, "
                            "rotate, add the new id to every node's --cluster-keys, start it")
        old = keystore.load_identity(data_dir)
        passphrase = None
        if record.get("protection", {}).get("kind") == "passphrase":
            passphrase = os.environ.get(keystore.PASSPHRASE_ENV)
        succession = key_files.rotate(data_dir, old, new, phrase, int(time.time()),
                                      passphrase)
    running = _tell_daemon(data_dir) is not None
    when = "now" if running else "when it starts"
    _emit(args, stdout, {"old": succession.old, "new": succession.new,
                         "at": succession.at, "running": running},
          f"gateway {succession.old} rotated to {succession.new}; it serves the new key "
          f"{when}, and the old one with the succession during --succession-grace")
    return 0
