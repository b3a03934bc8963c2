"""The ``blockhub`` command.

Identity commands work on a data directory directly; the others talk to the running
daemon over its control socket.  Every user mistake becomes one line on standard
error and a non-zero exit, never a traceback.
"""

import argparse
import sys

from blockhub.errors import UserError


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other CLI error."""

    def error(self, message):
        raise UserError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    from blockhub.cli import control_cmds, identity_cmds, records_cmds

    parser = _Parser(prog="blockhub", description="Drive blockhub hubs and gateways.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    identity_cmds.register(sub)
    control_cmds.register(sub)
    records_cmds.register(sub)
    return parser


def main(argv=None, stdin=None, stdout=None, stderr=None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        return args.func(args, stdin=stdin, stdout=stdout) or 0
    except UserError as e:
        print(f"blockhub: error: {e}", file=stderr)
        return 1
    except KeyboardInterrupt:
        print("blockhub: interrupted", file=stderr)
        return 130


def run() -> None:
    sys.exit(main())
