"""The entry points: the plugin file's two ``ServiceMaker`` lines, the taps' options, and
the limits declared once in ``blockhub.limits`` and listed in docs/security.md."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import types

import attrs
from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactor
from twisted.plugin import IPlugin
from twisted.python import usage
from twisted.scripts._twistd_unix import ServerOptions
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from blockhub import limits, tap_common
from blockhub.gateway import tap as gateway_tap
from blockhub.hub import tap as hub_tap
from blockhub.limits import BOTH, GATEWAY, HUB, LIMITS, Limits, limits_from_options

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_FILE = os.path.join(REPO, "twisted", "plugins", "blockhub_plugins.py")
TAPS = {GATEWAY: gateway_tap, HUB: hub_tap}


def load_plugin_file():
    """The source tree's plugin file itself (``twisted.plugins`` may find an installed
    copy first)."""
    spec = importlib.util.spec_from_file_location("blockhub_plugins_in_tree", PLUGIN_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse(daemon, *argv, data_dir="d"):
    options = TAPS[daemon].Options()
    options.parseOptions(["--data-dir", data_dir, *argv])
    return options


def limits_table():
    """The rows of docs/security.md's "Limits and their defaults" table, as cell lists."""
    with open(os.path.join(REPO, "docs", "security.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Limits and their defaults", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip()[1:-1].split("|")] for row in rows[2:]]


def options_in(cell):
    return re.findall(r"`--([a-z0-9-]+)`", cell)


class DeclarationTests(SynchronousTestCase):
    def test_every_field_is_declared_once(self):
        fields = attrs.fields(Limits)
        self.assertEqual([limit.field for limit in LIMITS], [a.name for a in fields])
        for limit, field in zip(LIMITS, fields, strict=True):
            self.assertIs(limit.kind, field.type, limit.field)
            self.assertEqual(limit.default, getattr(limits.DEFAULT, limit.field))
            self.assertTrue(limit.daemons and set(limit.daemons) <= set(BOTH), limit.field)
            self.assertTrue(all(limit.help_for(d) for d in limit.daemons), limit.field)
        names = [limit.option for limit in LIMITS]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(limits.OPTIONS, {limit.option: limit.field for limit in LIMITS})

    def test_limits_from_options(self):
        given = {limit.option: "7" for limit in LIMITS}
        made = limits_from_options(given)
        for limit in LIMITS:
            value = getattr(made, limit.field)
            self.assertEqual((value, type(value)), (limit.kind(7), limit.kind), limit.field)
        self.assertEqual(limits_from_options({"max-hubs": None}), limits.DEFAULT)

    def test_in_table(self):
        by_field = {limit.field: limit for limit in LIMITS}
        self.assertEqual([by_field[f].in_table() for f in
                          ("max_frame", "tls_timeout", "relay_per_minute", "relay_burst",
                           "max_hubs")],
                         ["262144 bytes", "10 s", "30 / min", "burst 10", "20000"])


class SecurityTableTests(SynchronousTestCase):
    """Each limit's row in docs/security.md names its option, the daemons that take it,
    and starts its default cell with the declared default."""

    def test_every_limit_has_its_row(self):
        table = limits_table()
        for limit in LIMITS:
            rows = [row for row in table if limit.option in options_in(row[1])]
            self.assertEqual(len(rows), 1, f"--{limit.option}: {len(rows)} rows")
            what, option_cell, default_cell = rows[0][:3]
            self.assertEqual(what, limit.row, limit.option)
            label = "both" if limit.daemons == BOTH else limit.daemons[0]
            self.assertTrue(option_cell.endswith(f"({label})"), (limit.option, option_cell))
            part = default_cell.split(", ")[options_in(option_cell).index(limit.option)]
            self.assertTrue(re.match(re.escape(limit.in_table()) + r"(?![\w.])", part),
                            f"--{limit.option}: {limit.in_table()!r} vs {default_cell!r}")

    def test_every_option_in_the_table_is_a_limit(self):
        declared = {limit.option for limit in LIMITS}
        for row in limits_table():
            if row[1] != "fixed":
                self.assertLessEqual(set(options_in(row[1])), declared, row[1])
                self.assertTrue(options_in(row[1]), row)


class LimitOptionTests(SynchronousTestCase):
    def test_each_daemon_takes_its_limits_with_their_help(self):
        for daemon, tap in TAPS.items():
            options = tap.Options()
            text = "".join(options.getUsage().split())  # as --help wraps it
            for limit in LIMITS:
                if daemon in limit.daemons:
                    self.assertIn("".join(limit.help_for(daemon).split()), text,
                                  (daemon, limit.option))
                    self.assertIn(f"--{limit.option}=", text)
                    self.assertEqual(options[limit.option],
                                     limit.default if limit.shown else None)
                else:
                    self.assertNotIn(limit.option, options)
                    self.assertRaises(usage.UsageError, parse, daemon,
                                      f"--{limit.option}", "1")

    def test_limits_parse_to_their_types(self):
        for daemon in TAPS:
            taken = [limit for limit in LIMITS if daemon in limit.daemons]
            argv = [arg for limit in taken for arg in (f"--{limit.option}", "7")]
            options = parse(daemon, *argv)
            for limit in taken:
                value = options[limit.option]
                self.assertEqual((value, type(value)), (limit.kind(7), limit.kind))
            self.assertEqual(getattr(limits_from_options(options), taken[0].field), 7)

    def test_bad_limit_values_are_usage_errors(self):
        for daemon in TAPS:
            for limit in LIMITS:
                if daemon in limit.daemons:
                    bad = ["x", "0", "-1"] if limit.positive else ["x"]
                    for value in bad:
                        e = self.assertRaises(usage.UsageError, parse, daemon,
                                              f"--{limit.option}", value)
                        self.assertIn("Parameter type enforcement failed", str(e))
                    if limit.kind is int:
                        self.assertRaises(usage.UsageError, parse, daemon,
                                          f"--{limit.option}", "1.5")


class GatewayOptionsTests(SynchronousTestCase):
    def test_defaults(self):
        options = parse(GATEWAY)
        self.assertEqual((options["listen"], options["mode"], options["idle-timeout"]),
                         ("tcp:6610:interface=127.0.0.1", "private", 60.0))
        self.assertEqual(limits_from_options(options), limits.DEFAULT)

    def test_circuit_limits_are_gateway_options(self):
        options = parse(GATEWAY, "--max-circuits-per-hub", "0", "--circuit-rate", "4096",
                        "--circuit-idle-timeout", "12.5")
        made = limits_from_options(options)
        self.assertEqual((made.max_circuits_per_hub, made.circuit_rate,
                          made.circuit_idle_timeout, made.circuit_pending_timeout),
                         (0, 4096, 12.5, 30.0))
        for option in ("--circuit-rate", "--circuit-bandwidth"):
            self.assertRaises(usage.UsageError, parse, GATEWAY, option, "0")
            self.assertRaises(usage.UsageError, parse, HUB, option, "5")

    def test_short_flags(self):
        options = gateway_tap.Options()
        options.parseOptions(["-d", "x", "-l", "tcp:1", "-m", "open"])
        self.assertEqual((options["data-dir"], options["listen"], options["mode"]),
                         ("x", "tcp:1", "open"))

    def test_usage_errors(self):
        for argv, message in [
                ([], "--data-dir is required"),
                (["-d", "x", "--mode", "public"], "--mode must be private or open"),
                (["-d", "x", "--http", "tcp:80"],
                 "--http needs --public-address IP:PORT for our record"),
                (["-d", "x", "--manhole", "tcp:2222"],
                 "--manhole needs --manhole-keys FILE (public keys only)")]:
            options = gateway_tap.Options()
            e = self.assertRaises(usage.UsageError, options.parseOptions, argv)
            self.assertEqual(str(e), message)


class HubOptionsTests(SynchronousTestCase):
    def test_defaults(self):
        options = parse(HUB)
        self.assertEqual(
            [options[k] for k in ("listen", "rotate-interval", "request-ttl",
                                  "gateway-list-interval", "archive", "gateway",
                                  "approve-key", "approve-ip", "gateway-list")],
            [None, 0.0, 86400.0, 3600.0, 0, [], [], [], []])
        self.assertEqual(limits_from_options(options), limits.DEFAULT)

    def test_repeatable_and_short(self):
        options = hub_tap.Options()
        options.parseOptions(["-d", "x", "-c", "c.json", "-l", "tcp:0", "-n", "alice",
                              "--gateway", "a@h:1", "--gateway", "b@h:2",
                              "--approve-key", "k", "--approve-ip", "10.0.0.0/8",
                              "--gateway-list", "https://l", "--archive"])
        self.assertEqual(
            [options[k] for k in ("config", "listen", "name", "gateway", "approve-key",
                                  "approve-ip", "gateway-list", "archive")],
            ["c.json", "tcp:0", "alice", ["a@h:1", "b@h:2"], ["k"], ["10.0.0.0/8"],
             ["https://l"], 1])

    def test_usage_errors(self):
        for argv, message in [
                ([], "--data-dir is required"),
                (["-d", "x", "--rotate-interval", "-1"], "--rotate-interval must be 0 or more"),
                (["-d", "x", "--gateway-list", "ftp://l"],
                 "--gateway-list wants an http(s) URL, not 'ftp://l'"),
                (["-d", "x", "--request-ttl", "0"],
                 "Parameter type enforcement failed: must be greater than zero"),
                (["-d", "x", "--gateway-list-interval", "-5"],
                 "Parameter type enforcement failed: must be greater than zero"),
                (["-d", "x", "--manhole", "tcp:2222"],
                 "--manhole needs --manhole-keys FILE (public keys only)")]:
            options = hub_tap.Options()
            e = self.assertRaises(usage.UsageError, options.parseOptions, argv)
            self.assertEqual(str(e), message)


class PidFileTests(SynchronousTestCase):
    def test_pid_file_defaults_to_the_data_dir(self):
        for tap in TAPS.values():
            parent = ServerOptions()
            options = tap.Options()
            options.parent = parent
            options.parseOptions(["--data-dir", "some/dir"])
            self.assertEqual(parent["pidfile"],
                             os.path.join(os.path.abspath("some/dir"), "twistd.pid"))

    def test_a_given_pid_file_is_kept(self):
        parent = ServerOptions()
        parent["pidfile"] = "/run/mine.pid"
        options = hub_tap.Options()
        options.parent = parent
        options.parseOptions(["--data-dir", "some/dir"])
        self.assertEqual(parent["pidfile"], "/run/mine.pid")


class MakeServiceTests(SynchronousTestCase):
    def test_a_user_error_is_one_line(self):
        """A ``UserError`` while making the service ends as ``error: ...`` and an exit."""
        for daemon, tap in TAPS.items():
            empty = self.mktemp()
            os.mkdir(empty)
            options = parse(daemon, "--gateway", "x@h:1", data_dir=empty) if daemon == HUB \
                else parse(daemon, data_dir=empty)
            e = self.assertRaises(SystemExit, tap.makeService, options, MemoryReactor())
            self.assertTrue(e.code.startswith(f"error: no identity in {empty}"), e.code)
            self.assertNotIn("\n", e.code)


    def test_a_user_error_reaches_the_log_file_too(self):
        """twistd opens its log only after makeService: the error is written there as
        well as to stderr."""
        for daemon, tap in TAPS.items():
            empty, log = self.mktemp(), self.mktemp()
            os.mkdir(empty)
            options = parse(daemon, "--gateway", "x@h:1", data_dir=empty) if daemon == HUB \
                else parse(daemon, data_dir=empty)
            options.parent = {"logfile": log, "nodaemon": True, "syslog": False}
            e = self.assertRaises(SystemExit, tap.makeService, options, MemoryReactor())
            with open(log) as f:
                [line] = f.read().splitlines()
            self.assertTrue(line.endswith(f"[blockhub.tap#critical] {e.code}"), line)

    def test_where_twistd_logs(self):
        for given, expected in [({"logfile": "x.log"}, "x.log"), ({}, "twistd.log"),
                                ({"nodaemon": True}, None), ({"logfile": "-"}, None),
                                ({"logfile": "x.log", "syslog": True}, None)]:
            options = types.SimpleNamespace(parent=given)
            self.assertEqual(tap_common.log_file(options), expected, given)
        self.assertIsNone(tap_common.log_file(object()))


class PluginFileTests(SynchronousTestCase):
    def test_two_service_makers(self):
        module = load_plugin_file()
        makers = {m.tapname: m for m in vars(module).values() if IServiceMaker.providedBy(m)}
        self.assertEqual(sorted(makers), ["blockhub-gateway", "blockhub-hub"])
        self.assertEqual(
            [makers[n].description for n in sorted(makers)],
            ["A blockhub gateway (hubs connect here)",
             "A blockhub hub (joins gateways, peers with hubs)"])
        for name, tap in [("blockhub-gateway", gateway_tap), ("blockhub-hub", hub_tap)]:
            maker = makers[name]
            self.assertTrue(IPlugin.providedBy(maker))
            verifyObject(IServiceMaker, maker)
            self.assertIs(maker.options, tap.Options)
            self.assertIs(maker.makeService, tap.makeService)

    def test_imports_nothing_heavy(self):
        """The plugin file imports no blockhub module (twistd --help reads it), and a
        tap no service, reactor, TLS, crypto or database module."""
        script = f"""
import importlib.util, json, sys
import twisted.scripts.twistd
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("p", {PLUGIN_FILE!r})
spec.loader.exec_module(importlib.util.module_from_spec(spec))
plugin = sorted(set(sys.modules) - before)
import blockhub.gateway.tap, blockhub.hub.tap
print(json.dumps([plugin, sorted(sys.modules)]))
"""
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                              text=True, timeout=60,
                              env=dict(os.environ, PYTHONPATH=REPO))
        self.assertEqual(done.returncode, 0, done.stderr)
        plugin, loaded = json.loads(done.stdout)
        self.assertEqual(plugin, [])
        heavy = ("twisted.internet.reactor", "OpenSSL", "nacl", "sqlite3", "treq", "automat",
                 "cryptography", "blockhub.gateway.service", "blockhub.hub.service",
                 "blockhub.keystore")
        self.assertEqual([m for m in loaded if m.split(".")[0] in heavy or m in heavy], [])
