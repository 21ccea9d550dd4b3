"""Rotated files the application names: a handler's ``namer``, ``rotator``,
``suffix`` and ``extMatch`` are Python (lambdas, methods of a subclass), so
they run in a Python process that has them, not in the flusher.

When a handler has any of them, its flusher runs with ``--rotated-by-app``:
at each rollover it renames the live file to
``<file>.ringflush-pending.<unix ns>.<rollover instant>`` and goes on
writing a fresh one (it never waits for Python). A live process of the
segment then finishes each pending file as CPython's ``doRollover`` would:
the name from ``suffix`` (for the period the rollover instant closes) or
the numbered shift, through ``rotation_filename`` (the namer), then
``rotate`` (the rotator, or a rename), then retention (``getFilesToDelete``
with CPython 3.13's namer-aware matching, gh-115809). Every process with
such a handler does this from its supervisor thread, and ``flush()``,
``close()`` and ``doRollover()`` do it before they return.

Exactly once: one process at a time holds an ``flock`` on the log's
directory while it works through the pending files, oldest first. A
process that dies mid-rotator releases the lock with its death; the
pending file is still there (a rotator removes its source last), so the
next process does it again, to the same name (written down beside the
pending file, ``<pending>.dest``, before the rotator runs), and nothing is
lost. A name that already exists is never overwritten otherwise: ``.1``,
``.2``... is added before the namer.
"""

import fcntl
import os
import time

PENDING = ".ringflush-pending."


def pending_files(base_filename):
    """The pending rotated files of ``base_filename``, oldest first, as
    ``(path, unix_ns, rollover_at)``."""
    dirname, base = os.path.split(base_filename)
    prefix = base + PENDING
    try:
        names = os.listdir(dirname or ".")
    except OSError:
        return []
    found = []
    for name in names:
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix):].split(".")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            found.append((int(parts[0]), int(parts[1]), os.path.join(dirname, name)))
    found.sort()
    return [(path, ns, at) for ns, at, path in found]


def apply_pending(handler, wait=0.0):
    """Finish every pending rotated file of ``handler`` (see the module
    docs), waiting up to ``wait`` seconds for another process that is at
    it. Returns the number finished here."""
    if not pending_files(handler.baseFilename):
        return 0
    dirname = os.path.dirname(handler.baseFilename) or "."
    fd = os.open(dirname, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if not _lock(fd, wait):
            return 0
        done = 0
        # Listed again under the lock: another process may have done some.
        for path, ns, rollover_at in pending_files(handler.baseFilename):
            handler._finish_rotated(path, ns // 1_000_000_000, rollover_at)
            done += 1
        return done
    finally:
        os.close(fd)  # and with it the lock


def _lock(fd, wait):
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def chosen_dest(path, choose):
    """The name the pending file ``path`` goes to: the one an interrupted
    attempt wrote down, else ``choose()``, written down first."""
    note = path + ".dest"
    try:
        with open(note, encoding="utf-8") as f:
            dest = f.read()
        if dest:
            return dest
    except FileNotFoundError:
        pass
    dest = choose()
    with open(note + ".tmp", "w", encoding="utf-8") as f:
        f.write(dest)
    os.replace(note + ".tmp", note)
    return dest


def finished(path):
    """The pending file ``path`` is done: its note goes."""
    try:
        os.remove(path + ".dest")
    except FileNotFoundError:
        pass


def free_name(handler, default_name):
    """``handler.rotation_filename(default_name)``, or of
    ``default_name.N`` with the first N whose name does not exist."""
    dfn = handler.rotation_filename(default_name)
    n = 0
    while os.path.exists(dfn):
        n += 1
        dfn = handler.rotation_filename(f"{default_name}.{n}")
    return dfn


def period_time_tuple(handler, rollover_at, rotated_at):
    """The time tuple whose strftime names the file closed by the rollover
    at ``rollover_at``, done at ``rotated_at`` (CPython's doRollover, with
    its DST correction)."""
    t = rollover_at - handler.interval
    if handler.utc:
        return time.gmtime(t)
    then = time.localtime(t)
    dst_now = time.localtime(rotated_at)[-1]
    if dst_now != then[-1]:
        return time.localtime(t + (3600 if dst_now else -3600))
    return then


def shift_numbered(handler):
    """RotatingFileHandler's shift of ``base.1`` ... ``base.N-1`` one up,
    through the namer, making room for a new ``base.1``."""
    base = handler.baseFilename
    for i in range(handler.backupCount - 1, 0, -1):
        sfn = handler.rotation_filename(f"{base}.{i}")
        dfn = handler.rotation_filename(f"{base}.{i + 1}")
        if os.path.exists(sfn):
            if os.path.exists(dfn):
                os.remove(dfn)
            os.rename(sfn, dfn)
    dfn = handler.rotation_filename(base + ".1")
    if os.path.exists(dfn):
        os.remove(dfn)
    return dfn
