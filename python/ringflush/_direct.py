"""When no ring can be made (no room in /dev/shm even for the smallest
ring, no /dev/shm at all, EACCES), a drop-in handler writes the file
itself, as the standard library class would, with every write and every
rollover under an exclusive ``flock`` on a lock file beside the log
(concurrent-log-handler's approach): the app starts, and no record is lost
between its processes, at the price of a lock and a write(2) per record.

A rollover by another process is noticed under the lock (the path leads to
another file than the one open): the file is opened again and a timed
schedule restarts from now, so the period is rolled over once, not once
per process."""

import fcntl
import logging
import logging.handlers
import os
import threading
import time


def lock_path(path):
    """The lock file: beside the log, hidden, outside ``app.log*`` globs."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.ringflush-lock")


class LockedFile:
    """The standard library handler ``inner``, shared with other processes
    through the lock file. ``outer`` is the drop-in handler users hold: its
    formatter and rotation hooks (``namer``, ``rotator``, ``suffix``,
    ``extMatch``) are the ones that apply."""

    HOOKS = ("namer", "rotator", "suffix", "extMatch")

    def __init__(self, outer, inner):
        self._outer = outer
        self._inner = inner
        self._lock = threading.Lock()
        self._fd = None
        self._pid = None

    def _locked(self):
        """The lock file, opened anew in a forked child (a shared open file
        description would share the lock with the parent)."""
        if self._pid != os.getpid():
            os.makedirs(os.path.dirname(self._inner.baseFilename) or ".", exist_ok=True)
            self._fd = os.open(lock_path(self._inner.baseFilename),
                               os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd

    def _sync(self):
        """Under the lock: the outer handler's formatter and hooks, and the
        file another process may have rolled over."""
        inner, outer = self._inner, self._outer
        inner.formatter = outer.formatter
        for name in self.HOOKS:
            if hasattr(outer, name) and hasattr(inner, name):
                setattr(inner, name, getattr(outer, name))
        if inner.stream is None:
            return
        try:
            same = os.path.samestat(os.fstat(inner.stream.fileno()), os.stat(inner.baseFilename))
        except OSError:
            same = False
        if not same:
            inner.stream.close()
            inner.stream = inner._open()
            if hasattr(inner, "rolloverAt"):
                inner.rolloverAt = inner.computeRollover(int(time.time()))

    def _under_lock(self, action, *args):
        with self._lock:
            fd = self._locked()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                self._sync()
                return action(*args)
            finally:
                self._outer.stream = self._inner.stream
                fcntl.flock(fd, fcntl.LOCK_UN)

    def emit(self, record):
        """Write the record (rolling the file over first when due); a
        failure goes to the outer handler's ``handleError``, as emit's."""
        try:
            self._under_lock(self._inner.emit, record)
        except Exception:
            self._outer.handleError(record)
        return True

    def do_rollover(self):
        self._under_lock(self._inner.doRollover)

    def flush(self):
        with self._lock:
            self._inner.flush()

    def close(self):
        with self._lock:
            self._inner.close()
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = self._pid = None


# Taken at import, before anything may replace the stdlib's classes by ours.
_STDLIB = {
    "FileHandler": logging.FileHandler,
    "WatchedFileHandler": logging.handlers.WatchedFileHandler,
    "RotatingFileHandler": logging.handlers.RotatingFileHandler,
    "TimedRotatingFileHandler": logging.handlers.TimedRotatingFileHandler,
}


def stdlib_handler(kind, path, kwargs):
    """The standard library's own class for drop-in ``kind``, made with the
    arguments the drop-in got, in append mode (several processes share the
    file: none may truncate what the others wrote)."""
    kwargs = dict(kwargs)
    if "mode" in kwargs:
        kwargs["mode"] = "a"
    return _STDLIB[kind](path, **kwargs)
