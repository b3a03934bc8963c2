"""The systemd units in contrib/systemd: their sandboxing, their command line, and
``systemd-analyze verify`` on copies rendered with this virtual environment's twistd
(verify refuses a command that does not exist, and the shipped files name a
placeholder).  Without systemd-analyze the verify test is skipped, with its reason."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "contrib" / "systemd"
PLACEHOLDER = "/opt/blockhub/venv/bin/twistd"
GATEWAY = "blockhub-gateway.service"
HUB = "blockhub-hub@.service"


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values in order]}}``: unit files repeat keys, which
    configparser refuses, and an empty assignment resets a list (kept as "")."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path}: {raw!r} outside a section"
        assert not line.endswith("\\"), f"{path}: keep {raw!r} on one line"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def render(path: Path, twistd: str, name: str, into: Path) -> Path:
    target = into / name
    target.write_text(path.read_text().replace(PLACEHOLDER, twistd))
    return target


class UnitContentTests(SynchronousTestCase):
    def service(self, name):
        return parse_unit(UNITS / name)["Service"]

    def one(self, service, key):
        values = service.get(key)
        self.assertTrue(values, f"{key} is not set")
        return values[-1]

    def test_sandboxing(self):
        for name in (GATEWAY, HUB):
            service = self.service(name)
            self.assertTrue(self.one(service, "User") or self.one(service, "DynamicUser"))
            expected = {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
                        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
                        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
                        "LockPersonality": "yes", "RestrictSUIDSGID": "yes",
                        "RestrictNamespaces": "yes", "UMask": "0077",
                        "StateDirectoryMode": "0700",
                        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}
            for key, value in expected.items():
                self.assertEqual(self.one(service, key), value, f"{name}: {key}")
            self.assertIn("@system-service", service["SystemCallFilter"], name)

    def test_capabilities(self):
        gateway, hub = self.service(GATEWAY), self.service(HUB)
        self.assertEqual(self.one(gateway, "AmbientCapabilities"), "CAP_NET_BIND_SERVICE")
        self.assertEqual(self.one(gateway, "CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE")
        self.assertEqual(hub["CapabilityBoundingSet"], [""])

    def test_exec_start_runs_twistd_in_the_foreground_logging_to_stdout(self):
        for name, plugin, opts in ((GATEWAY, "blockhub-gateway", "$BLOCKHUB_GATEWAY_OPTS"),
                                   (HUB, "blockhub-hub", "$BLOCKHUB_HUB_OPTS")):
            argv = self.one(self.service(name), "ExecStart").split()
            self.assertEqual(argv[0], PLACEHOLDER)
            before = argv[1:argv.index(plugin)]
            self.assertIn("--nodaemon", before)
            self.assertIn("--logfile=-", before)
            self.assertIn("--pidfile=", before)
            self.assertEqual(argv[-1], opts)
            self.assertIn("--data-dir", argv)

    def test_data_dir_and_key_ring_are_writable_and_apart(self):
        for name in (GATEWAY, HUB):
            service = self.service(name)
            argv = self.one(service, "ExecStart").split()
            data = argv[argv.index("--data-dir") + 1]
            environment = dict(v.split("=", 1) for v in service["Environment"])
            ring = environment["BLOCKHUB_KEYRING"]
            states = ["/var/lib/" + d for d in self.one(service, "StateDirectory").split()]
            # ProtectSystem=strict: only the state directories are writable.
            self.assertIn(data, states, name)
            self.assertIn(ring, states, name)
            self.assertEqual(self.one(service, "WorkingDirectory"), data)
            # Kept apart: neither lies inside the other, and not in one top directory,
            # so a backup of the data takes no key ring with it.
            self.assertNotEqual(data.split("/")[3], ring.split("/")[3], name)

    def test_hub_instances_each_have_their_own_directories(self):
        service = self.service(HUB)
        for key in ("StateDirectory", "WorkingDirectory", "EnvironmentFile", "ExecStart",
                    "Environment"):
            self.assertIn("%i", self.one(service, key), key)

    def test_options_come_from_an_environment_file_whose_example_sets_them(self):
        for name, example, variable in ((GATEWAY, "gateway.env.example",
                                         "BLOCKHUB_GATEWAY_OPTS"),
                                        (HUB, "hub.env.example", "BLOCKHUB_HUB_OPTS")):
            self.assertTrue(self.one(self.service(name), "EnvironmentFile")
                            .startswith("/etc/blockhub/"))
            lines = (UNITS / example).read_text().splitlines()
            self.assertTrue(any(line.startswith(variable + "=") for line in lines), example)

    def test_memory_deny_write_execute_only_if_pyopenssl_survives_it(self):
        """pyOpenSSL makes its verify callback with cffi's ffi.callback, which needs
        writable+executable memory.  Under Linux's PR_SET_MDWE (what systemd uses for
        MemoryDenyWriteExecute= where the kernel has it) a TLS context as the daemons
        make it either works, or the units must not turn MDWE on."""
        script = textwrap.dedent("""
            import ctypes, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
                print(os.strerror(ctypes.get_errno()))
                sys.exit(3)
            from blockhub.net.tls import ServerCreator
            from tests.memory import new_identity
            try:
                ServerCreator(new_identity())
            except MemoryError:
                sys.exit(4)
        """)
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        if done.returncode == 3:
            raise SkipTest(f"systemd tests: PR_SET_MDWE unavailable ({done.stdout.strip()})")
        self.assertIn(done.returncode, (0, 4), done.stderr)
        if done.returncode == 4:
            for name in (GATEWAY, HUB):
                self.assertNotIn("yes", self.service(name).get("MemoryDenyWriteExecute", []),
                                 f"{name}: the daemons cannot start with it")


class VerifyTests(SynchronousTestCase):
    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise SkipTest("systemd tests: systemd-analyze not found")
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        if not os.access(twistd, os.X_OK):
            raise SkipTest(f"systemd tests: no twistd beside {sys.executable}")
        into = Path(self.mktemp()).resolve()
        into.mkdir(parents=True)
        units = [render(UNITS / GATEWAY, twistd, GATEWAY, into),
                 render(UNITS / HUB, twistd, "blockhub-hub@example.service", into)]
        done = subprocess.run([analyze, "verify", "--man=no", *map(str, units)], cwd=into,
                              capture_output=True, text=True, timeout=120)
        # verify returns 0 after warnings such as an unknown key: any output is a failure.
        self.assertEqual((done.returncode, done.stdout + done.stderr), (0, ""))
