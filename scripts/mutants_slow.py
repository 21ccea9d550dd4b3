#!/usr/bin/env python3
"""The second pass of scripts/mutants.sh: each mutant the fast pass left
alive, against slower test suites of other packages.

cargo-mutants 27 runs only the mutated package's tests (its --test-package
did not take effect here), so this applies each surviving mutant's diff in
a scratch git worktree, runs `cargo test ARGS...` there, and reverts it.

    scripts/mutants_slow.py mutants.out-ring/mutants.out -p ringflush \\
        --test it -- faults:: hostile::

Prints and appends to <results>/slow.txt one line per mutant:
CAUGHT / MISSED / TIMEOUT, seconds, name. A baseline run comes first; if
the unmutated tree fails, nothing is judged.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 600


def run_tests(tree, env, args):
    """MISSED when the tests pass, CAUGHT when they fail, TIMEOUT when they
    hang (the whole process group is killed then)."""
    p = subprocess.Popen(["cargo", "test", "-q", *args], cwd=tree, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        return "MISSED" if p.wait(timeout=TIMEOUT_S) == 0 else "CAUGHT"
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        return "TIMEOUT"


def patch(tree, target, diff, *flags):
    with open(diff) as d:
        subprocess.run(["patch", "-s", *flags, target], cwd=tree, stdin=d, check=True)


def main():
    results, args = sys.argv[1], sys.argv[2:]
    outcomes = json.load(open(os.path.join(results, "outcomes.json")))["outcomes"]
    missed = [o for o in outcomes if o["summary"] == "MissedMutant"]
    repo = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, check=True).stdout.strip()
    tree = tempfile.mkdtemp(prefix="rf-mutants-")
    subprocess.run(["git", "worktree", "add", "-q", "--detach", tree, "HEAD"], cwd=repo,
                   check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(repo, "target", "mutants-slow"))
    log = open(os.path.join(results, "slow.txt"), "a")

    def say(line):
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    try:
        if run_tests(tree, env, args) != "MISSED":
            say("BASELINE failed: the unmutated tree does not pass these tests")
            return 1
        for o in missed:
            name = o["scenario"]["Mutant"]["name"]
            diff = os.path.join(results, o["diff_path"])
            # cargo-mutants' diffs name the mutant, not a file, on the +++
            # line: patch the file the --- line names.
            target = open(diff).readline().removeprefix("--- ").strip()
            patch(tree, target, diff)
            start = time.time()
            verdict = run_tests(tree, env, args)
            patch(tree, target, diff, "-R")
            say(f"{verdict}\t{time.time() - start:.0f}s\t{name}")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=repo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
