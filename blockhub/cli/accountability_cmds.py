"""``blockhub verify-equivocation FILE``: check a proof that a gateway equivocated, on
its own, with nothing but the file (docs/accountability.md)."""

import json

from blockhub.cli.output import say
from blockhub.errors import ProtocolError, UserError
from blockhub.heads import check_proof


def register(sub):
    p = sub.add_parser("verify-equivocation",
                       help="check a proof of equivocation: two heads signed by one gateway "
                            "that cannot be on one chain (exit 0 when it holds)")
    p.add_argument("file", metavar="FILE", help="an equivocation-<gateway id>.json")
    p.set_defaults(func=cmd_verify_equivocation)


def cmd_verify_equivocation(args, stdin, stdout):
    try:
        with open(args.file, encoding="utf-8") as f:
            document = json.load(f)
    except ValueError as e:
        raise UserError(f"{args.file} is not JSON: {e}")
    try:
        why = check_proof(document)
    except ProtocolError as e:
        raise UserError(f"not a proof of equivocation: {e}")
    say(stdout, f"valid proof: {why}")
    return 0
