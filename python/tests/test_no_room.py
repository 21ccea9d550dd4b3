"""The drop-in never stops an app from starting: with a /dev/shm too small
for the default ring it takes a smaller one; with no /dev/shm at all it
writes the file itself, under a lock shared by its processes (one warning,
every line once, rollovers once). Mount namespaces (`unshare -m`) give the
app its own /dev/shm; needs root (CI runs as root)."""

import os
import subprocess
import sys
import textwrap

import pytest

# Forked workers log through one dictConfig'd handler, each process
# flushing before it exits; the parent waits for them.
APP = textwrap.dedent("""
    import logging, logging.config, os, sys, time
    logging.config.dictConfig({
        "version": 1,
        "formatters": {"plain": {"format": "%(process)d %(message)s"}},
        "handlers": {"file": {
            "class": "ringflush.TimedRotatingFileHandler", "filename": sys.argv[1],
            "when": "S", "backupCount": 0, "formatter": "plain"}},
        "root": {"handlers": ["file"], "level": "INFO"},
    })
    # The stdlib creates the file at configuration: so does the drop-in.
    assert os.path.exists(sys.argv[1])
    log = logging.getLogger("app")
    children = []
    for w in range(4):
        pid = os.fork()
        if pid == 0:
            for n in range(300):
                log.info("worker=%d seq=%d", w, n)
                time.sleep(0.005)
            logging.shutdown()
            os._exit(0)
        children.append(pid)
    assert all(os.waitpid(pid, 0)[1] == 0 for pid in children)
    logging.shutdown()
""")

# /dev replaced by a directory holding only /dev/null: no /dev/shm at all.
NO_DEV_SHM = ('d=$(mktemp -d) && mount -t tmpfs tmpfs "$d" && touch "$d/null" '
              '&& mount --bind /dev/null "$d/null" && mount --bind "$d" /dev')
SMALL_DEV_SHM = "mount -t tmpfs -o size=1m tmpfs /dev/shm"


def _can_unshare_mounts():
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def run_in_mount_namespace(tmp_path, setup):
    if not _can_unshare_mounts():
        if os.environ.get("CI"):
            pytest.fail("unshare -m must work in CI (it runs as root)")
        pytest.skip("unshare -m needs root")
    (tmp_path / "app.py").write_text(APP)
    log = tmp_path / "logs" / "app.log"
    script = f'{setup} && exec "{sys.executable}" app.py "{log}"'
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out, log.parent


def records(logs):
    lines = []
    for name in sorted(os.listdir(logs)):
        if name.startswith("app.log"):
            with open(logs / name, encoding="utf-8") as f:
                lines += [line.split(" ", 1)[1] for line in f.read().splitlines()]
    return lines


def expected():
    return sorted(f"worker={w} seq={n}" for w in range(4) for n in range(300))


def test_a_1_mib_dev_shm_gets_a_smaller_ring_and_every_line(tmp_path):
    out, logs = run_in_mount_namespace(tmp_path, SMALL_DEV_SHM)
    warnings = [line for line in out.stderr.splitlines() if line.startswith("ringflush:")]
    assert len(warnings) == 1 and "using a 512 KiB ring" in warnings[0], out.stderr
    assert sorted(records(logs)) == expected()


def test_no_dev_shm_at_all_writes_the_file_under_a_lock_with_every_line_once(tmp_path):
    out, logs = run_in_mount_namespace(tmp_path, NO_DEV_SHM)
    warnings = [line for line in out.stderr.splitlines() if line.startswith("ringflush:")]
    assert len(warnings) == 1, out.stderr
    assert "no ring could be made" in warnings[0] and "writes the file itself" in warnings[0]
    assert sorted(records(logs)) == expected()
    # Several seconds of records: rolled over, once per second at most.
    rotated = [n for n in os.listdir(logs) if n.startswith("app.log.")]
    assert rotated, os.listdir(logs)
    assert len(rotated) == len(set(n[:len("app.log.") + 19] for n in rotated))
