"""The ``blockhub`` command.

Identity commands work on a data directory directly; the others talk to the running
daemon over its control socket.  Every failure (a user's mistake, a daemon that went
away, a closed pipe, even a bug) becomes one line on standard error and a non-zero
exit, never a traceback.
"""

import argparse
import os
import sys

from blockhub.cli.output import printable
from blockhub.errors import UserError


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other CLI error."""

    def error(self, message):
        raise UserError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    from blockhub.cli import (
        accountability_cmds,
        admin_cmds,
        control_cmds,
        identity_cmds,
        invite_cmds,
        records_cmds,
        succession_cmds,
    )

    parser = _Parser(prog="blockhub", description="Drive blockhub hubs and gateways.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    identity_cmds.register(sub)
    control_cmds.register(sub)
    invite_cmds.register(sub)
    admin_cmds.register(sub)
    records_cmds.register(sub)
    accountability_cmds.register(sub)
    succession_cmds.register(sub)
    return parser


def main(argv=None, stdin=None, stdout=None, stderr=None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        return args.func(args, stdin=stdin, stdout=stdout) or 0
    except UserError as e:
        return _fail(stderr, f"error: {e}")
    except KeyboardInterrupt:
        print("blockhub: interrupted", file=stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped (``blockhub messages | head``): nothing to say.
        return 1
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        return _fail(stderr, f"error: {e.strerror or e}{where}")
    except Exception as e:
        # A bug or an answer we did not expect: still one line, with what it was.
        return _fail(stderr, f"internal error: {type(e).__name__}: {e}")


def _fail(stderr, message: str) -> int:
    """One escaped line on stderr (a message may quote a peer's text); exit status 1."""
    print(f"blockhub: {printable(message)}", file=stderr)
    return 1


def run() -> None:
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the failed flush again at exit; point stdout elsewhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = code or 1
    sys.exit(code)
