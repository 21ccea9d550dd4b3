"""Drop-in replacements for the standard library's file handlers.

``ringflush.TimedRotatingFileHandler``, ``RotatingFileHandler``,
``FileHandler`` and ``WatchedFileHandler`` take the standard library's
arguments with their meaning; a logging config changes the class path and
nothing else. Each handler's records go to a segment named after the file's
absolute path (or ``shm=``), and a flusher for it starts by itself (see
``_autostart.py``), rotating as the arguments say and formatting with the
handler's formatter:

- a plain ``logging.Formatter`` (``%``, ``{`` or ``$`` style, ``datefmt``,
  ``defaults``) is handed to the flusher, which formats exactly as it would:
  the worker only writes the record's fields (the fast path), unless the
  flusher would refuse the format (``{args[0]}``, datefmt directives it
  lacks), the format prints ``levelname`` and the application registered
  level names (checked when the formatter is set and again at the first
  record), or the record is of another shape (``makeLogRecord`` records, a
  level renamed by a filter: ``_dropin.flusher_writes``);
- any other formatter (a subclass, structlog's ProcessorFormatter, JSON
  formatters) formats in the worker, and the flusher writes its text.

The rest of the standard library's contract (``flush()``, ``doRollover()``,
``namer``/``rotator``, ``suffix``/``extMatch``, ``computeRollover``...) is
honoured as docs/PYTHON.md, "What the drop-in honours", lists.
"""

import logging.handlers
import math
import os
import re
import time

from . import _autostart, _rotated, _written
from ._dropin import DropIn
from ._native import compute_rollover as _compute_rollover
from ._ring import RingHandler

__all__ = ["TimedRotatingFileHandler", "RotatingFileHandler", "FileHandler", "WatchedFileHandler"]

_WHEN = {"S", "M", "H", "D", "MIDNIGHT"} | {f"W{d}" for d in range(7)}
# CPython 3.13's suffixes and extMatch patterns, by `when`.
_SUFFIX = {"S": ("%Y-%m-%d_%H-%M-%S", r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}"),
           "M": ("%Y-%m-%d_%H-%M", r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}"),
           "H": ("%Y-%m-%d_%H", r"\d{4}-\d{2}-\d{2}_\d{2}"),
           "D": ("%Y-%m-%d", r"\d{4}-\d{2}-\d{2}")}
_UNIT = {"S": 1, "M": 60, "H": 3600, "D": 86400, "MIDNIGHT": 86400}
# doRollover requests from other processes this close to a rollover one of
# them asked for are served by it: every worker of a deploy asks at boot,
# and the deploy gets one fresh file.
ROLLOVER_COALESCE = 5.0
# How long doRollover waits for the flusher to roll over.
ROLLOVER_TIMEOUT = 5.0


# Taken at import, before anything may replace the stdlib's class by ours.
_STDLIB_FILES_TO_DELETE = logging.handlers.TimedRotatingFileHandler.getFilesToDelete


def _time_of_day(at):
    return f"{at.hour:02d}:{at.minute:02d}:{at.second:02d}"


class _Rotating(DropIn):
    """BaseRotatingHandler's API: ``namer``, ``rotator``,
    ``rotation_filename``, ``rotate`` (applied to the files the flusher
    rotates, by ``_rotated.py``), and ``doRollover``."""

    namer = None
    rotator = None

    def rotation_filename(self, default_name):
        if not callable(self.namer):
            return default_name
        return self.namer(default_name)

    def rotate(self, source, dest):
        if not callable(self.rotator):
            if os.path.exists(source):
                os.rename(source, dest)
        else:
            self.rotator(source, dest)

    def _hands_off(self):
        return self.namer is not None or self.rotator is not None

    def doRollover(self):
        """Roll the file over now: what this process wrote so far stays in
        the old file. The flusher rolls (``ringflush rotate`` makes the same
        request); this returns once it has, and the namer and rotator have
        run. Requests from other processes within ``ROLLOVER_COALESCE`` of
        one that was served are served by it (see docs/PYTHON.md)."""
        if self._direct is not None:
            return self._direct.do_rollover()
        status = self._status
        done, at_ns = status.last_rollover()
        if (at_ns and time.time_ns() - at_ns < ROLLOVER_COALESCE * 1e9
                and self._served != (os.getpid(), done)):
            # Another process asked a moment ago (a deploy's workers boot
            # one after another): its rollover serves this one.
            self._served = (os.getpid(), done)
            self.flush()
            return self._rolled_over()
        self._start_once()
        self.flush()
        self._supervise()  # hooks set since the first record: their flusher
        deadline = time.monotonic() + ROLLOVER_TIMEOUT
        while not status.flusher_alive():
            if not self._flusher_coming() or time.monotonic() >= deadline:
                self._say_once("rollover", "doRollover(): no flusher is running to roll the "
                               "file over; it rolls over when one starts")
                status.join_rollover(done)
                return None
            time.sleep(_written.POLL)
        # Joined with a request waiting, or served by a rollover made since
        # the call: processes asking at once roll the file once.
        request = status.join_rollover(done)
        while request is not None and not status.rollover_done(request):
            if time.monotonic() >= deadline or not status.flusher_alive():
                self._say_once("rollover", "doRollover(): the flusher did not roll the file "
                               f"over within {ROLLOVER_TIMEOUT:.0f} s")
                return None
            time.sleep(_written.POLL)
        self._served = (os.getpid(), status.last_rollover()[0])
        return self._rolled_over()

    def _rolled_over(self):
        if self._names_rotated_files():
            self._finish_pending(wait=ROLLOVER_TIMEOUT)
        if self.stream is not None:
            self.stream.close()
            self.stream = self._open()
        self._follow_schedule()


class TimedRotatingFileHandler(_Rotating, RingHandler):
    """``logging.handlers.TimedRotatingFileHandler``, written by a
    ringflush flusher (see the module docs). ``compress="gzip"``: the
    flusher gzips rotated files (without a namer or rotator)."""

    __module__ = "ringflush"  # the path configs name it by

    def __init__(self, filename, when="h", interval=1, backupCount=0, encoding=None,
                 delay=False, utc=False, atTime=None, errors=None, *, shm=None,
                 autostart=True, on_full="block", timeout=1.0, compress=None):
        when = when.upper()
        if when not in _WHEN:
            if when.startswith("W"):
                raise ValueError(f"Invalid day specified for weekly rollover: {when}")
            raise ValueError(f"Invalid rollover interval specified: {when}")
        if interval < 1:
            raise ValueError(f"ringflush rotates every interval >= 1: interval={interval!r}")
        self.when, self.backupCount, self.utc, self.atTime = when, backupCount, utc, atTime
        self.interval = _UNIT.get(when, 7 * 86400) * interval  # seconds, as CPython
        if when.startswith("W"):
            self.dayOfWeek = int(when[1])
        suffix, ext = _SUFFIX.get(when, _SUFFIX["D"])
        self.suffix = self._default_suffix = suffix
        self.extMatch = self._default_ext = re.compile(rf"(?<!\d){ext}(?!\d)", re.ASCII)
        self._at_time = None
        rotation = ["--when", when, "--interval", str(interval),
                    "--backup-count", str(backupCount)]
        if utc:
            rotation.append("--utc")
        if atTime is not None and (when == "MIDNIGHT" or when.startswith("W")):
            self._at_time = _time_of_day(atTime)
            rotation += ["--at-time", self._at_time]
        rotation += _compress_args(compress)
        self._units = interval
        self._check("a", encoding, errors)
        path = os.path.abspath(os.fspath(filename))
        failure = self._join_ring(shm or _autostart.segment_name(path), on_full, timeout, path)
        if failure is None:
            self._setup(path, "a", encoding, errors, delay, autostart, rotation)
        else:
            self._write_directly(failure, "TimedRotatingFileHandler", path, _kwargs(
                errors, when=when, interval=interval, backupCount=backupCount,
                encoding=encoding, delay=delay, utc=utc, atTime=atTime))
        # As the flusher schedules it: from the file's mtime, or now.
        try:
            st = os.stat(path)
            t = int(st.st_mtime) if st.st_size > 0 else int(time.time())
        except OSError:
            t = int(time.time())
        self.rolloverAt = self.computeRollover(t)

    def _hands_off(self):
        return (super()._hands_off() or self.suffix != self._default_suffix
                or self.extMatch.pattern != self._default_ext.pattern)

    def computeRollover(self, currentTime):
        """The next rollover after ``currentTime``, from the schedule the
        flusher runs (the rotation crate)."""
        whole = math.floor(currentTime)
        at = _compute_rollover(self.when, self._units, self.utc, self._at_time, whole)
        return at + (currentTime - whole)

    def shouldRollover(self, record):
        """Whether a record now would go into a new file (the flusher rolls
        it; CPython 3.13's rule, regular files only)."""
        t = int(time.time())
        if t >= self.rolloverAt:
            if os.path.exists(self.baseFilename) and not os.path.isfile(self.baseFilename):
                self.rolloverAt = self.computeRollover(t)
                return False
            return True
        return False

    def _follow_schedule(self):
        t = int(time.time())
        if t >= self.rolloverAt:
            self.rolloverAt = self.computeRollover(t)

    def getFilesToDelete(self):
        """The backups beyond ``backupCount``, as the running interpreter's
        logging finds them (its own code: the same ``extMatch`` and
        ``namer`` keep the meaning they had with the stdlib handler; 3.13's
        is namer-aware, gh-115809)."""
        return _STDLIB_FILES_TO_DELETE(self)

    def _finish_rotated(self, path, rotated_at, rollover_at):
        if not rollover_at:
            rollover_at = self.computeRollover(rotated_at)
        when = _rotated.period_time_tuple(self, rollover_at, rotated_at)
        default = self.baseFilename + "." + time.strftime(self.suffix, when)
        dest = _rotated.chosen_dest(path, lambda: _rotated.free_name(self, default))
        self.rotate(path, dest)
        _rotated.finished(path)
        if self.backupCount > 0:
            for name in self.getFilesToDelete():
                os.remove(name)


class RotatingFileHandler(_Rotating, RingHandler):
    """``logging.handlers.RotatingFileHandler``, written by a ringflush
    flusher (see the module docs). ``compress="gzip"``: the flusher gzips
    rotated files (without a namer or rotator)."""

    __module__ = "ringflush"  # the path configs name it by

    def __init__(self, filename, mode="a", maxBytes=0, backupCount=0, encoding=None,
                 delay=False, errors=None, *, shm=None, autostart=True,
                 on_full="block", timeout=1.0, compress=None):
        # As the standard library: with maxBytes, the mode is append.
        if maxBytes > 0:
            mode = "a"
        self.maxBytes, self.backupCount = maxBytes, backupCount
        # "If either of maxBytes or backupCount is zero, rollover never
        # occurs" (doRollover still shifts the backups).
        rotation = []
        if backupCount > 0:
            if maxBytes > 0:
                rotation = ["--max-bytes", str(maxBytes)]
            rotation += ["--backup-count", str(backupCount), *_compress_args(compress)]
        self._check(mode, encoding, errors)
        path = os.path.abspath(os.fspath(filename))
        failure = self._join_ring(shm or _autostart.segment_name(path), on_full, timeout, path)
        if failure is None:
            self._setup(path, mode, encoding, errors, delay, autostart, rotation)
        else:
            self._write_directly(failure, "RotatingFileHandler", path, _kwargs(
                errors, mode=mode, maxBytes=maxBytes, backupCount=backupCount,
                encoding=encoding, delay=delay))

    def shouldRollover(self, record):
        """Whether the record would take the file to ``maxBytes`` (CPython
        3.13's rule: never an empty file, regular files only)."""
        if os.path.exists(self.baseFilename) and not os.path.isfile(self.baseFilename):
            return False
        if self.maxBytes > 0:
            try:
                pos = os.path.getsize(self.baseFilename)
            except OSError:
                pos = 0
            if not pos:
                return False
            msg = "%s\n" % self.format(record)
            if pos + len(msg) >= self.maxBytes:
                return True
        return False

    def doRollover(self):
        # With no backups, CPython's doRollover only reopens the file.
        if self.backupCount <= 0:
            return self.flush()
        return super().doRollover()

    def _stages_rotations(self):
        return not self._rotated_by_app and self.backupCount > 0

    def _finish_rotated(self, path, rotated_at, rollover_at):
        if self.backupCount <= 0:
            return
        # The shift happens once: a redo after a crash reuses its name.
        self.rotate(path, _rotated.chosen_dest(path, lambda: _rotated.shift_numbered(self)))
        _rotated.finished(path)


class FileHandler(DropIn, RingHandler):
    """``logging.FileHandler``, written by a ringflush flusher (see the
    module docs)."""

    __module__ = "ringflush"  # the path configs name it by
    _STDLIB_KIND = "FileHandler"

    def __init__(self, filename, mode="a", encoding=None, delay=False, errors=None, *,
                 shm=None, autostart=True, on_full="block", timeout=1.0):
        self._check(mode, encoding, errors)
        path = os.path.abspath(os.fspath(filename))
        failure = self._join_ring(shm or _autostart.segment_name(path), on_full, timeout, path)
        if failure is None:
            self._setup(path, mode, encoding, errors, delay, autostart, [])
        else:
            self._write_directly(failure, type(self)._STDLIB_KIND, path,
                                 _kwargs(errors, mode=mode, encoding=encoding, delay=delay))


class WatchedFileHandler(FileHandler):
    """``logging.handlers.WatchedFileHandler``: the flusher reopens the
    file whenever its path leads elsewhere (it checks before every
    batch), which is what this handler is for."""

    __module__ = "ringflush"  # the path configs name it by
    _STDLIB_KIND = "WatchedFileHandler"

    def reopenIfNeeded(self):
        """The flusher does this before every batch: nothing to do here."""


def _kwargs(errors, **kwargs):
    """The standard library class's arguments (``errors`` only where given:
    Python 3.8 lacks it)."""
    if errors is not None:
        kwargs["errors"] = errors
    return kwargs


def _compress_args(compress):
    if compress is None:
        return []
    if compress != "gzip":
        raise ValueError(f"invalid compress={compress!r}: use None or 'gzip'")
    return ["--compress", "gzip", "--compress-delay", "0"]
