"""The flusher a Python application starts for itself.

Every process with a drop-in handler (``ringflush.TimedRotatingFileHandler``
and friends) runs one daemon thread, the supervisor, that looks at each
handler's segment once a second (and soon after the handler is made): if no
flusher holds it, the process starts one, detached in its own session so
that it outlives the worker that started it, with the handler's rotation
and format and ``--exit-when-idle``: it drains and exits once no process
that uses the segment is alive. Several processes may try at once; the
segment's lock lets one flusher run, and the others exit at once. The
flusher's own messages, each line with its time, go to
``.<log file name>.ringflush-errors`` beside the log.

The first record a process writes also checks at once (and starts a
flusher if none runs), so that a short-lived process never leaves its
records waiting for the next one. With ``autostart=False`` the supervisor
only watches: a process with
records waiting and no flusher for a few seconds says so once on stderr.

The supervisor is started again in a child after ``os.fork()`` (gunicorn's
``--preload``, multiprocessing's fork), by an ``os.register_at_fork`` hook.
"""

import atexit
import hashlib
import logging
import os
import re
import subprocess
import sys
import threading
import time
import weakref

# How often each segment is looked at, and how soon a new handler's is.
CHECK_EVERY = 1.0
FIRST_CHECK_AFTER = 0.05
# An auto-start is not tried again sooner than this (the flusher needs a
# moment to take its lock and publish its heartbeat).
START_AGAIN_AFTER = 2.0
# Without autostart, records waiting this long with no flusher are said.
FORGOTTEN_AFTER = 3.0

# Started in a fresh interpreter: leave the starter's session and process
# tree (so the flusher outlives it and is not a zombie of it), then become
# the flusher: `python -m ringflush ARGS`.
_DETACH = (
    "import os, sys\n"
    "os.setsid()\n"
    "if os.fork():\n"
    "    os._exit(0)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'ringflush', *sys.argv[1:]])\n"
)


def segment_name(path):
    """The segment for a log file: readable, unique per absolute path."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(path))[:40]
    digest = hashlib.sha1(os.fsencode(path)).hexdigest()[:12]
    return f"/ringflush-{base}-{digest}"


def errors_file(path):
    """Where an auto-started flusher's stderr goes: beside the log, hidden,
    so that globs like ``app.log*`` (log shippers, logrotate) leave it out."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.ringflush-errors")


def start_flusher(args, log_path):
    """Start a detached flusher with ``args``. Returns the pid of the
    intermediate process, which exits at once (the supervisor reaps it);
    the flusher itself is nobody's child."""
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    fd = os.open(errors_file(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        # posix_spawn: no fork of this (maybe large, threaded) process, and
        # the child is on its way before the call returns.
        return os.posix_spawn(
            sys.executable, [sys.executable, "-c", _DETACH, *args], os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                          (os.POSIX_SPAWN_DUP2, fd, 2)],
        )
    finally:
        os.close(fd)
        os.close(devnull)


def reap(pids):
    """Reap the intermediate processes that have exited; keep the others."""
    left = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if not done:
            left.append(pid)
    return left


class Supervisor:
    """The per-process thread that keeps a flusher running for each
    drop-in handler (see the module docs)."""

    def __init__(self):
        self._handlers = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._spawned = []

    def spawned(self, pid):
        """An intermediate process to reap."""
        with self._lock:
            self._spawned.append(pid)

    def watch(self, handler):
        _made.add(handler)
        with self._lock:
            self._handlers.add(handler)
            self._ensure_thread()
        self._wake.set()

    def forget(self, handler):
        with self._lock:
            self._handlers.discard(handler)

    def _ensure_thread(self):
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="ringflush-supervisor", daemon=True)
            self._thread.start()

    def _after_fork_in_child(self):
        # The thread did not survive the fork; locks may be held by threads
        # that no longer exist.
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._spawned = []  # the parent's, not ours to reap
        for handler in list(self._handlers):
            handler._after_fork_in_child()
        if len(self._handlers):
            self._ensure_thread()
            self._wake.set()

    def _run(self):
        while True:
            woken = self._wake.wait(CHECK_EVERY)
            if woken:
                self._wake.clear()
                time.sleep(FIRST_CHECK_AFTER)
            with self._lock:
                handlers = list(self._handlers)
                self._spawned = reap(self._spawned)
            for handler in handlers:
                try:
                    handler._supervise()
                except Exception as e:  # never let the thread die, never silently
                    handler._say_once("supervise", f"supervising its flusher failed: {e!r}")


SUPERVISOR = Supervisor()
# Every drop-in handler made in this process, closed ones too.
_made = weakref.WeakSet()
# Set in a process that forked: its children share its registration until
# they log, so it never removes its segments at exit.
_forked = False


def _mark_forked():
    global _forked
    _forked = True


def _remove_unused_segments():
    """At exit, after ``logging.shutdown``: a handler that logged nothing
    never got a flusher, which would have removed its segment on leaving;
    remove it here if nobody else uses it (see ``Producer::
    remove_segment_if_unused``)."""
    if _forked:
        return
    for handler in list(_made):
        producer = handler.__dict__.get("_producer")
        if producer is not None and handler._direct is None:
            try:
                producer.remove_segment_if_unused()
            except Exception:  # at exit: never fail the interpreter's shutdown
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=SUPERVISOR._after_fork_in_child,
                        after_in_parent=_mark_forked)
# atexit runs last-registered first: logging.shutdown (registered when
# logging was imported) goes again on top, so that it runs first.
atexit.register(_remove_unused_segments)
atexit.unregister(logging.shutdown)
atexit.register(logging.shutdown)
