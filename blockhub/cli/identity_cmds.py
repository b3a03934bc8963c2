"""Commands that work on a data directory without a running daemon: ``init``, ``id``,
``phrase`` and ``network-key``."""

import getpass
import os
import secrets
from pathlib import Path

from blockhub import keystore
from blockhub.errors import UserError
from blockhub.identity import new_phrase, normalize_phrase

WARNING = ("Write these words down and keep them somewhere safe and offline.\n"
           "They are the only way to recover this identity; they will not be shown again\n"
           "unless you ask with: blockhub phrase --data-dir DIR --yes")


def data_dir_arg(parser):
    parser.add_argument("--data-dir", required=True, type=Path, metavar="DIR",
                        help="the hub's or gateway's data directory")


def text_arg(value: str, what: str) -> str:
    """Refuse text that has no UTF-8 form (undecodable bytes on the command line become
    lone surrogates), which the daemon could neither store nor send."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{what} is not valid UTF-8 text")
    return value


def register(sub):
    p = sub.add_parser("init", help="create a new identity (or recover one) in a data directory")
    data_dir_arg(p)
    p.add_argument("--name", default="", help="a display name shared in HubInfo")
    p.add_argument("--words", type=int, choices=(12, 24), default=12,
                   help="length of the new recovery phrase (default 12)")
    p.add_argument("--recover", action="store_true",
                   help="read an existing recovery phrase from standard input")
    p.add_argument("--passphrase", action="store_true",
                   help="seal the phrase under a passphrase (from $BLOCKHUB_PASSPHRASE or a "
                        "prompt) instead of the key ring")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("id", help="print the identity's id")
    data_dir_arg(p)
    p.add_argument("--hex", action="store_true",
                   help="print the raw 32-byte Ed25519 public key as lowercase hex")
    p.set_defaults(func=cmd_id)

    p = sub.add_parser("phrase", help="reveal the recovery phrase")
    data_dir_arg(p)
    p.add_argument("--yes", action="store_true", help="confirm that the phrase may be shown")
    p.set_defaults(func=cmd_phrase)

    p = sub.add_parser("network-key", help="make a new shared network key file (0600)")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="file to create")
    p.set_defaults(func=cmd_network_key)


def _passphrase(confirm: bool) -> str:
    value = os.environ.get(keystore.PASSPHRASE_ENV)
    if value:
        return text_arg(value, f"${keystore.PASSPHRASE_ENV}")
    try:
        first = getpass.getpass("Passphrase: ")
        if confirm and getpass.getpass("Repeat passphrase: ") != first:
            raise UserError("the passphrases differ")
    except EOFError:
        raise UserError(f"no passphrase given (set ${keystore.PASSPHRASE_ENV} or type it)")
    return text_arg(first, "the passphrase")


def cmd_init(args, stdin, stdout):
    if keystore.has_identity(args.data_dir):
        raise UserError(f"{args.data_dir} already holds an identity; refusing to overwrite it")
    text_arg(args.name, "--name")
    if args.recover:
        if stdin.isatty():
            print("Type the recovery phrase, then press Enter:", file=stdout, flush=True)
        try:
            line = stdin.readline()
        except UnicodeDecodeError:
            raise UserError("the recovery phrase is not valid UTF-8 text")
        phrase = normalize_phrase(line)
    else:
        phrase = new_phrase(args.words)
    passphrase = _passphrase(confirm=True) if args.passphrase else None
    identity = keystore.create_identity(args.data_dir, phrase, args.name, passphrase=passphrase)
    print(f"id: {identity.id}", file=stdout)
    if not args.recover:
        print(f"\nRecovery phrase ({len(phrase.split())} words):\n\n    {phrase}\n", file=stdout)
        print(WARNING, file=stdout)
    return 0


def cmd_id(args, stdin, stdout):
    record = keystore.read_record(args.data_dir)
    if args.hex:
        from blockhub.ids import decode_id
        print(decode_id(record["id"]).hex(), file=stdout)
    else:
        print(record["id"], file=stdout)
    return 0


def cmd_phrase(args, stdin, stdout):
    if not args.yes:
        raise UserError("this shows the secret recovery phrase; add --yes to confirm")
    print(keystore.load_phrase(args.data_dir), file=stdout)
    return 0


def cmd_network_key(args, stdin, stdout):
    if args.out.exists():
        raise UserError(f"{args.out} exists; refusing to overwrite it")
    keystore.write_private(args.out, (secrets.token_hex(32) + "\n").encode())
    print(f"wrote a new network key to {args.out}; give the same file to the gateway "
          f"and its hubs (--network-key)", file=stdout)
    return 0
