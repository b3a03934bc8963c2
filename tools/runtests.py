"""Run ruff and the whole trial suite; end with one line ``N passed, M failed``.

The counts come from trial's result object, not from its printed summary, and ruff
counts as one check.  The exit status is non-zero when anything failed.
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


def run_trial(names: list[str]):
    sys.path.insert(0, ROOT)
    os.chdir(ROOT)
    from twisted.trial import reporter, runner

    loader = runner.TestLoader()
    suite = loader.loadByNames(names or ["tests"], recurse=True)
    trial = runner.TrialRunner(reporter.TreeReporter, workingDirectory="_trial_temp")
    return trial.run(suite)


def main() -> int:
    lint_ok = run_ruff()
    result = run_trial(sys.argv[1:])
    failed = (len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
              + (0 if lint_ok else 1))
    skipped = len(result.skips)
    passed = result.testsRun - len(result.failures) - len(result.errors) \
        - len(result.unexpectedSuccesses) - skipped + (1 if lint_ok else 0)
    summary = f"{passed} passed, {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    print(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
