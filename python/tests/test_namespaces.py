"""The drop-in handlers beside a flusher in another PID namespace (a sidecar
container sharing /dev/shm, `unshare --pid`): they see it running through
its lock on the segment, in whatever namespace it lives, so they start no
second flusher and warn of nothing, even while it is paused. Needs root for
`unshare` (CI runs as root)."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ringflush import _autostart
from ringflush._native import SegmentStatus
from test_dropin import wait_for


def _can_unshare():
    try:
        return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                              capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def _ringflush_under(root):
    """The pid (seen from here) of the `python -m ringflush` process under
    `root`."""
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            continue
        for c in children:
            try:
                with open(f"/proc/{c}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if cmd[:3] == [sys.executable.encode(), b"-m", b"ringflush"]:
                return c
            todo.append(c)
    return None


@pytest.fixture
def sidecar(tmp_path):
    """A flusher for `tmp_path/app.log`'s drop-in segment, in a PID
    namespace of its own; its pid as seen from here."""
    if not _can_unshare():
        if os.environ.get("CI"):
            pytest.fail("unshare --pid must work in CI (it runs as root)")
        pytest.skip("unshare --pid needs root")
    log = tmp_path / "app.log"
    shm = _autostart.segment_name(str(log))
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", '"$@"; exit $?', "sh",
         sys.executable, "-m", "ringflush", "--shm", shm, "--file", str(log),
         "--format", "%(message)s"],
        stderr=subprocess.PIPE, text=True)
    pid = None

    def running():
        nonlocal pid
        pid = pid or _ringflush_under(proc.pid)
        try:
            return pid is not None and SegmentStatus(shm).flusher_alive()
        except Exception:
            return False

    try:
        assert wait_for(running, timeout=30), "the sidecar flusher did not start"
        yield log, pid
    finally:
        if pid:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        try:
            os.unlink("/dev/shm" + shm)
        except FileNotFoundError:
            pass


APP = """
import logging, os, signal, sys, time
import ringflush
h = ringflush.FileHandler({log!r}, autostart={autostart})
h.setFormatter(logging.Formatter("%(message)s"))
log = logging.getLogger("app"); log.addHandler(h); log.setLevel(logging.INFO)
for i in range(10):
    log.info("{name} line %d", i)
    time.sleep(0.1)
# The sidecar pauses (docker pause): records wait, its lock still held.
os.kill({sidecar}, signal.SIGSTOP)
for i in range(10, 20):
    log.info("{name} line %d", i)
    time.sleep(0.5)
os.kill({sidecar}, signal.SIGCONT)
time.sleep(1.5)
"""


@pytest.mark.parametrize("autostart", [True, False])
def test_beside_a_flusher_in_another_pid_namespace_no_second_flusher_no_warning(
        tmp_path, sidecar, autostart):
    log, pid = sidecar
    name = f"autostart={autostart}"
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP.format(log=str(log), autostart=autostart,
                                                 sidecar=pid, name=name)))
    app = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert app.returncode == 0, app.stderr
    # Nothing said but, with autostart, that the sidecar's configuration
    # (not the handler's) is the one that runs.
    said = [l for l in app.stderr.splitlines() if "the running configuration wins" not in l]
    assert said == [], app.stderr
    lines = [f"{name} line {i}" for i in range(20)]

    def records():
        # The configuration notice goes into the log too.
        text = log.read_text() if log.exists() else ""
        return [l for l in text.splitlines() if not l.startswith("ringflush: ")]

    assert wait_for(lambda: records() == lines), records()
    # No flusher was started beside the sidecar (it would have said, in its
    # errors file, that one is already running).
    errors = _autostart.errors_file(str(log))
    assert not os.path.exists(errors), open(errors).read()
