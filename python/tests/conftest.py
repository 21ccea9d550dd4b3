"""Fixtures: a unique segment name and a running flusher (`python -m
ringflush`, the pip-installed path), stopped and cleaned up after the test."""

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _no_segment_left_behind():
    """Segments the drop-in handlers made for the tests' log files (named
    after their temporary paths, so never reused) are removed at the end:
    a test run must not leave 8 MiB files in /dev/shm."""
    before = set(os.listdir("/dev/shm"))
    yield
    for name in set(os.listdir("/dev/shm")) - before:
        if name.startswith("ringflush-"):
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except OSError:
                pass


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "ringflush", *args], capture_output=True, text=True, **kw)


class Flusher:
    def __init__(self, shm, directory, *args):
        self.shm = shm
        self.dir = directory
        self.log = os.path.join(directory, "app.log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ringflush", "--shm", shm, "--file", self.log, *args],
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            out = run("stat", "--shm", shm, "--json")
            if out.returncode == 0 and json.loads(out.stdout)["flusher"]["pid"] == self.proc.pid:
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("flusher did not start")

    def stat(self):
        return json.loads(run("stat", "--shm", self.shm, "--json").stdout)

    def wait_written(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.stat()["written"] >= n:
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        self.stderr = err
        assert self.proc.returncode == 0, err
        return err

    def files(self):
        """The live file and its rotated siblings, oldest first."""
        names = sorted(n for n in os.listdir(self.dir) if n.startswith("app.log."))
        return [os.path.join(self.dir, n) for n in names] + [self.log]

    def lines(self):
        out = []
        for path in self.files():
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    out.extend(f.read().splitlines())
        return out


@pytest.fixture
def shm():
    name = f"/rf-py-{os.getpid()}-{next(_counter)}"
    yield name
    try:
        os.unlink("/dev/shm" + name)
    except FileNotFoundError:
        pass


@pytest.fixture
def flusher(shm, tmp_path):
    started = []

    def start(*args):
        f = Flusher(shm, str(tmp_path), *args)
        started.append(f)
        return f

    yield start
    for f in started:
        if f.proc.poll() is None:
            f.proc.kill()
            f.proc.wait()


@pytest.fixture
def logger():
    """A logger whose records go to the given handlers only."""

    def make(name, *handlers, level=logging.INFO):
        log = logging.getLogger(name)
        log.setLevel(level)
        log.propagate = False
        log.handlers[:] = list(handlers)
        return log

    return make
