"""The drop-in's footprint: a test suite making a log per test, each in a
short-lived process, leaves /dev/shm as it found it (each auto-started
flusher removes its segment when it leaves, `ringflush_ring::closing`);
`ringflush ls` names each segment's log file and `rm --stale` removes the
segments nobody uses."""

import json
import os
import subprocess
import sys
import time

from ringflush import _autostart

APP = """
import logging, sys, ringflush
handler = ringflush.TimedRotatingFileHandler(sys.argv[1], when="midnight", backupCount=3)
log = logging.getLogger("suite")
log.addHandler(handler)
log.warning("the one line of %s", sys.argv[1])
"""


def shm_free():
    st = os.statvfs("/dev/shm")
    return st.f_bavail * st.f_frsize


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_200_short_processes_with_their_own_logs_leave_dev_shm_as_found(tmp_path):
    before, free_before = set(os.listdir("/dev/shm")), shm_free()
    paths = [str(tmp_path / f"test_case_{i}0" / "app.log") for i in range(200)]
    for start in range(0, len(paths), 8):
        procs = [subprocess.Popen([sys.executable, "-c", APP, p]) for p in paths[start:start + 8]]
        assert all(p.wait(timeout=120) == 0 for p in procs)
    ours = {_autostart.segment_name(p)[1:] for p in paths}
    # Each flusher drains, stays ~3 s idle, removes its segment and leaves.
    assert wait_for(lambda: not ours & set(os.listdir("/dev/shm")), timeout=180), \
        sorted(ours & set(os.listdir("/dev/shm")))[:5]
    for p in paths:
        with open(p, encoding="utf-8") as f:
            assert f.read() == f"the one line of {p}\n"
    after = set(os.listdir("/dev/shm"))
    assert not after - before, sorted(after - before)
    # Earlier tests' flushers may leave meanwhile; nothing of ours stays.
    assert len(after) <= len(before)
    # A removed segment's pages are freed when its flusher, the last to
    # map it, has exited: about a second after the removal.
    assert wait_for(lambda: shm_free() >= free_before, timeout=60), (shm_free(), free_before)


def run(*args):
    return subprocess.run([sys.executable, "-m", "ringflush", *args], capture_output=True,
                          text=True, timeout=60)


def test_ls_names_the_log_file_and_rm_stale_removes_what_nobody_uses(tmp_path):
    log = str(tmp_path / "kept" / "app.log")
    shm = "/rf-py-stale-%d" % os.getpid()
    # A segment whose flusher was stopped (not idle): it stays, empty.
    flusher = subprocess.Popen([sys.executable, "-m", "ringflush", "--shm", shm, "--file", log],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: run("stat", "--shm", shm, "--json").returncode == 0
                        and json.loads(run("stat", "--shm", shm, "--json").stdout)["flusher"]["alive"],
                        timeout=30)
        listed = json.loads(run("ls", "--json").stdout)
        mine = [s for s in listed if s["shm"] == shm]
        assert len(mine) == 1 and mine[0]["file"] == log and mine[0]["flusher"]["alive"], mine
        table = run("ls").stdout
        assert any(shm in line and log in line for line in table.splitlines()), table
        # In use: --stale leaves it.
        run("rm", "--stale")
        assert os.path.exists("/dev/shm" + shm)
    finally:
        flusher.terminate()
        flusher.communicate(timeout=60)
    assert os.path.exists("/dev/shm" + shm)
    stat = run("stat", "--shm", shm)
    assert f"file      {log}\n" in stat.stdout, stat.stdout
    out = run("rm", "--stale")
    assert out.returncode == 0, out.stderr
    assert f"removed /dev/shm{shm}" in out.stderr, out.stderr
    assert not os.path.exists("/dev/shm" + shm)


def test_the_file_exists_with_0644_under_umask_022_right_after_dictconfig(tmp_path):
    log = tmp_path / "logs" / "audit.log"
    code = f"""
import logging.config, os, stat
os.umask(0o022)
logging.config.dictConfig({{"version": 1, "handlers": {{"audit": {{
    "class": "ringflush.RotatingFileHandler", "filename": {str(log)!r},
    "maxBytes": 1 << 20, "backupCount": 3}}}}, "root": {{"handlers": ["audit"]}}}})
st = os.stat({str(log)!r})
assert st.st_size == 0, st
print(oct(stat.S_IMODE(st.st_mode)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0o644"


QUIET = """
import logging, sys, ringflush
handler = ringflush.FileHandler(sys.argv[1])
logging.getLogger("quiet").addHandler(handler)
if sys.argv[2] == "close":
    handler.close()
"""


def test_a_handler_that_logs_nothing_leaves_no_segment(tmp_path):
    paths = [str(tmp_path / f"quiet_{i}" / "errors.log") for i in range(20)]
    for i, p in enumerate(paths):
        subprocess.run([sys.executable, "-c", QUIET, p, "close" if i % 2 else "open"],
                       check=True, timeout=60)
    left = {_autostart.segment_name(p)[1:] for p in paths} & set(os.listdir("/dev/shm"))
    assert not left, sorted(left)
    assert all(os.path.exists(p) for p in paths)


DAEMON = """
import logging, os, sys, time, ringflush
handler = ringflush.FileHandler(sys.argv[1])
log = logging.getLogger("daemon")
log.addHandler(handler)
log.setLevel(logging.INFO)
if os.fork():
    os._exit(0) if sys.argv[2] == "hard" else sys.exit(0)
time.sleep(0.5)  # the parent has exited, without a record
log.info("from the child")
handler.flush()
"""


def test_a_child_that_logs_after_its_quiet_parent_exited_keeps_its_records(tmp_path):
    log = tmp_path / "daemon.log"
    subprocess.run([sys.executable, "-c", DAEMON, str(log), "soft"], check=True, timeout=60)
    assert wait_for(lambda: log.exists() and log.read_text().endswith("from the child\n"),
                    timeout=30), log.read_text() if log.exists() else None
