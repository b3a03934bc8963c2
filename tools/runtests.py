"""Run ruff, import-linter, mypy and the whole trial suite; end with one line
``N passed, M failed``.

The counts come from trial's result object, not from its printed summary; ruff,
import-linter (the layers, in .importlinter) and mypy (over blockhub/, configured in
pyproject.toml) count as one check each.  The exit status is non-zero when anything
failed.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_ruff() -> bool:
    ruff = os.path.join(os.path.dirname(sys.executable), "ruff")
    done = subprocess.run([ruff, "check", "blockhub", "tests", "twisted", "tools", "benchmarks"],
                          cwd=ROOT)
    return done.returncode == 0


def run_tool(name: str, argv: list[str]) -> bool:
    """Run a checker quietly: its whole output when it fails, its last line otherwise."""
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        print(done.stdout, end="")
        print(f"{name} failed")
    else:
        print(f"{name}: {lines[-1] if lines else 'ok'}")
    return done.returncode == 0


def run_import_linter() -> bool:
    lint_imports = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    cache = os.path.join(ROOT, ".venv", "import-linter-cache")
    return run_tool("import-linter", [lint_imports, "--cache-dir", cache])


def run_mypy() -> bool:
    return run_tool("mypy", [sys.executable, "-m", "mypy"])


def run_trial(names: list[str]):
    sys.path.insert(0, ROOT)
    os.chdir(ROOT)
    from twisted.trial import reporter, runner

    loader = runner.TestLoader()
    suite = loader.loadByNames(names or ["tests"], recurse=True)
    trial = runner.TrialRunner(reporter.TreeReporter, workingDirectory="_trial_temp")
    return trial.run(suite)


def main() -> int:
    checks = [run_ruff(), run_import_linter(), run_mypy()]
    result = run_trial(sys.argv[1:])
    failed = (len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
              + checks.count(False))
    skipped = len(result.skips)
    passed = result.testsRun - len(result.failures) - len(result.errors) \
        - len(result.unexpectedSuccesses) - skipped + checks.count(True)
    # One line for each reason to skip (the NAT lab's, the Redis tests'), above the
    # summary, so that a run says what it did not test.
    for reason in dict.fromkeys(str(reason) for _, reason in result.skips):
        print(f"SKIPPED: {reason}")
    summary = f"{passed} passed, {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    print(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
