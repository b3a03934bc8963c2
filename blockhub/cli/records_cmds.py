"""Commands for the public gateway list and for checking keys by voice:
``gateway-record``, ``verify-gateways`` and ``fingerprint``."""

import json
import time
from pathlib import Path

from blockhub import keystore
from blockhub.cli.output import say
from blockhub.errors import BadId, UserError
from blockhub.fingerprint import fingerprint
from blockhub.gateway.key_files import read_commitment
from blockhub.gateway_records import check_record, make_record, records_of
from blockhub.ids import normalise_id


def register(sub):
    p = sub.add_parser("gateway-record", help="print a signed record of a gateway's address")
    p.add_argument("--data-dir", required=True, type=Path, metavar="GATEWAYDIR",
                   help="the gateway's data directory")
    p.add_argument("--ip", required=True, help="the gateway's public IP address")
    p.add_argument("--port", required=True, type=int, help="the gateway's public port")
    p.add_argument("--expires", type=float, default=7.0, metavar="DAYS",
                   help="days until the record expires (may be fractional; default 7)")
    p.set_defaults(func=cmd_gateway_record)

    p = sub.add_parser("verify-gateways",
                       help="check the signature and expiry of every record in a list")
    p.add_argument("source", metavar="FILE_OR_URL")
    p.add_argument("--ca-file", type=Path, metavar="FILE",
                   help="PEM certificates to trust for HTTPS instead of the system store")
    p.set_defaults(func=cmd_verify_gateways)

    p = sub.add_parser("fingerprint", help="a short form of a key to compare by voice")
    p.add_argument("id", nargs="?", metavar="ID", help="a hub or gateway id")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="print this identity's own")
    p.set_defaults(func=cmd_fingerprint)


def cmd_gateway_record(args, stdin, stdout):
    if args.expires <= 0:
        raise UserError("--expires must be more than 0 days")
    identity = keystore.load_identity(args.data_dir)
    commitment = read_commitment(args.data_dir, identity.id)  # its next key, as ``next``
    try:
        record = make_record(identity, args.ip, args.port, int(time.time()), args.expires,
                             commitment)
    except ValueError as e:
        raise UserError(str(e))
    print(json.dumps(record, indent=2), file=stdout)
    return 0


def _load(source: str, ca_file):
    if source.startswith(("http://", "https://")):
        from blockhub.hub.gateway_list import fetch_blocking
        return fetch_blocking(source, ca_file)
    try:
        return json.loads(Path(source).read_text())
    except OSError as e:
        raise UserError(f"cannot read {source}: {e.strerror}")
    except (ValueError, RecursionError) as e:
        raise UserError(f"{source} is not JSON: {e}")


def cmd_verify_gateways(args, stdin, stdout):
    document = _load(args.source, args.ca_file)
    if isinstance(document, dict) and "pubKey" in document:
        document = {"gateways": [document]}  # one record, as gateway-record prints it
    try:
        records = records_of(document)
    except ValueError as e:
        raise UserError(f"{args.source}: {e}")
    now = int(time.time())
    bad = 0
    for n, record in enumerate(records, 1):
        # Each record alone: whatever one holds, it gets its own line and no more.
        problem = check_record(record, now)
        fields = record if isinstance(record, dict) else {}
        name = _field(fields, "pubKey")
        where = f"{_field(fields, 'IP')}:{_field(fields, 'Port')}"
        if problem:
            bad += 1
            say(stdout, f"{n}. BAD  {name} {where}: {problem}")
        else:
            days = (record["expires"] - now) / 86400
            say(stdout, f"{n}. OK   {name} {where} (expires in {days:.1f} days)")
    if not records:
        say(stdout, "the list holds no records")
    return 1 if bad else 0


def _field(record: dict, name: str) -> str:
    """A field of a record that may be anything, as a short piece of a line."""
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "?"
    text = str(value) if isinstance(value, str) or abs(value) < 10**20 else "(huge)"
    return text if len(text) <= 80 else text[:77] + "..."


def cmd_fingerprint(args, stdin, stdout):
    if (args.id is None) == (args.data_dir is None):
        raise UserError("give either an ID or --data-dir DIR")
    hub_id = args.id if args.id else keystore.read_record(args.data_dir)["id"]
    try:
        hub_id = normalise_id(hub_id)
    except BadId as e:
        raise UserError(str(e))
    print(fingerprint(hub_id), file=stdout)
    return 0
