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
  lacks) or the format prints ``levelname`` and the application registered
  level names (checked when the formatter is set and again at the first
  record; a name registered after that prints as ``Level N``);
- any other formatter (a subclass, structlog's ProcessorFormatter, JSON
  formatters) formats in the worker, and the flusher writes its text.

What cannot be honoured is an error when the handler is made: an encoding
other than UTF-8, ``mode='w'``.
"""

import codecs
import json
import logging
import os
import sys
import threading
import time

from . import _autostart
from ._native import Handle as _Handle
from ._native import SegmentStatus as _SegmentStatus
from ._native import check_format as _check_format
from ._ring import RingHandler

__all__ = ["TimedRotatingFileHandler", "RotatingFileHandler", "FileHandler", "WatchedFileHandler"]

_WHEN = {"S", "M", "H", "D", "MIDNIGHT"} | {f"W{d}" for d in range(7)}


def _never(record):
    return False


def _check_encoding(encoding, errors):
    if encoding is not None and codecs.lookup(encoding).name != "utf-8":
        raise ValueError(
            f"ringflush writes UTF-8 only: encoding={encoding!r} cannot be honoured")
    if errors not in (None, "strict", "replace"):
        raise ValueError(
            f"ringflush replaces text it cannot encode with U+FFFD: errors={errors!r} "
            "cannot be honoured (use None or 'replace')")


_STANDARD_LEVELS = {0, 10, 20, 30, 40, 50}


def _plain(formatter):
    """The flusher's format options for a formatter it reproduces exactly,
    with the names of the fields records must bring (beyond LogRecord's
    attributes) and the formatter's defaults; None when the worker must
    format (see the module docs)."""
    if type(formatter) is not logging.Formatter:
        return None
    # The flusher renders times in local time, as time.localtime does.
    if formatter.converter is not time.localtime:
        return None
    if (formatter.default_time_format != logging.Formatter.default_time_format
            or formatter.default_msec_format != logging.Formatter.default_msec_format):
        return None
    style_obj = formatter._style
    style = {logging.PercentStyle: "%", logging.StrFormatStyle: "{",
             logging.StringTemplateStyle: "$"}.get(type(style_obj))
    if style is None:
        return None
    defaults = getattr(style_obj, "_defaults", None) or {}
    defaults_json = json.dumps(defaults, default=str) if defaults else None
    try:
        # The flusher's own parser: what it would refuse, the worker formats.
        extras = _check_format(style_obj._fmt, style, formatter.datefmt, defaults_json)
    except ValueError:
        return None
    # Level names the application registered are the worker's to print.
    if set(logging._levelToName) - _STANDARD_LEVELS and "levelname" in style_obj._fmt:
        return None
    args = ["--format", style_obj._fmt]
    if style != "%":
        args += ["--style", style]
    if formatter.datefmt:
        args += ["--datefmt", formatter.datefmt]
    # A value for every field records bring (the worker checks that they do,
    # and raises as CPython would when one lacks it): the flusher refuses a
    # format with a field it could not always fill.
    placeholders = {name: "" for name in extras}
    placeholders.update(defaults)
    if placeholders:
        args += ["--defaults", json.dumps(placeholders, default=str)]
    return args, set(extras), defaults


class _DropIn:
    """What the drop-in handlers share (mixed into ``RingHandler``)."""

    # Until _setup has run (RingHandler.__init__ installs the native handle
    # before it), the native handle stays off.
    _first_done = False

    def _setup(self, filename, encoding, errors, autostart, rotation):
        _check_encoding(encoding, errors)
        self.baseFilename = os.path.abspath(os.fspath(filename))
        self.encoding = encoding
        self.errors = errors
        self._autostart = autostart
        self._rotation = rotation
        self._said = set()
        self._last_start = float("-inf")
        self._no_flusher_since = None
        self._status = _SegmentStatus(self.shm)
        self._first_done = False
        self._first_lock = threading.Lock()
        self._supervise_lock = threading.Lock()
        self._configure_formatting(None)
        _autostart.SUPERVISOR.watch(self)

    # -- formatting --------------------------------------------------------

    def setFormatter(self, fmt):
        super().setFormatter(fmt)
        self._configure_formatting(fmt)

    def _configure_formatting(self, fmt):
        plain = _plain(fmt or logging.Formatter())
        if plain is None:
            self._format_args = ["--format", "%(message)s"]
            self._worker_formats = True
            self._extra_fields = frozenset()
            self._defaults = {}
        else:
            self._format_args, extras, self._defaults = plain
            self._worker_formats = False
            self._extra_fields = frozenset(extras)
        # The extension writes plain records itself; records needing a
        # field check or worker formatting take the Python path, and so does
        # the first record, which makes sure a flusher runs.
        native = not self._worker_formats and not self._extra_fields
        if not self._first_done:
            self._emit_fast = self._first_record
            self.__dict__.pop("handle", None)
        elif native:
            self._emit_fast = self._producer.emit
            self._install_native_handle()
        else:
            self._emit_fast = _never
            self.__dict__.pop("handle", None)

    def _first_record(self, record):
        """The first record: make sure a flusher runs (started now if none
        does: the process may be gone before the supervisor's next look),
        then take the usual path from here on."""
        with self._first_lock:
            if not self._first_done:
                self._first_done = True
                # Decided again now, before the flusher starts with it: level
                # names are often registered after the config is loaded.
                self._configure_formatting(self.formatter)
                self._supervise()
        return self._emit_fast(record) if self._emit_fast is not self._first_record else False

    def _install_native_handle(self):
        if not self._first_done or self._worker_formats or self._extra_fields:
            return
        self.handle = _Handle(self._producer, self, RingHandler.handle, RingHandler.emit).handle

    def _emit(self, record):
        if self._worker_formats:
            return self._write_text(record, self.format(record))
        for name in self._extra_fields:
            if name not in record.__dict__ and name not in self._defaults:
                # What CPython's Formatter raises (then Handler.handleError).
                raise ValueError(f"Formatting field not found in record: {name!r}")
        return self._write_fields(record, exc_in_extra=True)

    # -- the flusher -------------------------------------------------------

    def _flusher_args(self):
        return ["--shm", self.shm, "--file", self.baseFilename, *self._rotation,
                *self._format_args, "--exit-when-idle"]

    def _say_once(self, key, message):
        if key in self._said:
            return
        self._said.add(key)
        sys.stderr.write(f"ringflush: {self.baseFilename}: {message}\n")
        sys.stderr.flush()

    def _supervise(self):
        """Called by the supervisor thread once a second (and by the first
        record): one caller at a time, so a flusher is started once."""
        with self._supervise_lock:
            self._supervise_locked()

    def _supervise_locked(self):
        status = self._status
        now = time.monotonic()
        # The flusher's lock, seen from any PID namespace (a sidecar's too).
        if status.flusher_alive():
            pid = status.flusher_pid()
            self._no_flusher_since = None
            running = status.flusher_args()
            mine = self._flusher_args()
            if self._autostart and running and _output_args(running) != _output_args(mine):
                self._report_other_config(pid, running, mine)
            return
        if self._autostart:
            if now - self._last_start >= _autostart.START_AGAIN_AFTER:
                self._last_start = now
                pid = _autostart.start_flusher(self._flusher_args(), self.baseFilename)
                _autostart.SUPERVISOR.spawned(pid)
            return
        if status.pending_bytes() == 0:
            self._no_flusher_since = None
            return
        since = self._no_flusher_since = self._no_flusher_since or now
        if now - since >= _autostart.FORGOTTEN_AFTER:
            self._say_once("forgotten", (
                f"records are waiting in segment {self.shm} and no flusher has run for "
                f"{_autostart.FORGOTTEN_AFTER:.0f} s: start one (ringflush --shm {self.shm} "
                "--file ...), or check that its --shm matches"))

    def _report_other_config(self, pid, running, mine):
        if "config" in self._said:
            return
        message = (
            f"its flusher (pid {pid}) runs with {' '.join(running)}; this process "
            f"(pid {os.getpid()}) asked for {' '.join(mine)}: the running configuration wins")
        self._say_once("config", message)
        record = logging.LogRecord("ringflush", logging.WARNING, __file__, 0,
                                   "ringflush: " + message, (), None)
        self._write_text(record, record.getMessage())

    def close(self):
        _autostart.SUPERVISOR.forget(self)
        super().close()


def _output_args(args):
    """A flusher's arguments less the ones that do not change what it
    writes: a sidecar started without ``--exit-when-idle`` (it should run
    on) writes the file as this handler's own flusher would."""
    return [a for a in args if a != "--exit-when-idle"]


def _time_of_day(at):
    return f"{at.hour:02d}:{at.minute:02d}:{at.second:02d}"


class TimedRotatingFileHandler(_DropIn, RingHandler):
    """``logging.handlers.TimedRotatingFileHandler``, written by a
    ringflush flusher (see the module docs)."""

    __module__ = "ringflush"  # the path configs name it by

    def __init__(self, filename, when="h", interval=1, backupCount=0, encoding=None,
                 delay=False, utc=False, atTime=None, errors=None, *, shm=None,
                 autostart=True, on_full="block", timeout=1.0):
        when = when.upper()
        if when not in _WHEN:
            if when.startswith("W"):
                raise ValueError(f"Invalid day specified for weekly rollover: {when}")
            raise ValueError(f"Invalid rollover interval specified: {when}")
        if interval < 1:
            raise ValueError(f"ringflush rotates every interval >= 1: interval={interval!r}")
        self.when, self.interval, self.backupCount = when, interval, backupCount
        self.utc, self.atTime = utc, atTime
        rotation = ["--when", when, "--interval", str(interval),
                    "--backup-count", str(backupCount)]
        if utc:
            rotation.append("--utc")
        if atTime is not None and (when == "MIDNIGHT" or when.startswith("W")):
            rotation += ["--at-time", _time_of_day(atTime)]
        path = os.path.abspath(os.fspath(filename))
        RingHandler.__init__(self, shm or _autostart.segment_name(path), on_full, timeout)
        self._setup(path, encoding, errors, autostart, rotation)


class RotatingFileHandler(_DropIn, RingHandler):
    """``logging.handlers.RotatingFileHandler``, written by a ringflush
    flusher (see the module docs)."""

    __module__ = "ringflush"  # the path configs name it by

    def __init__(self, filename, mode="a", maxBytes=0, backupCount=0, encoding=None,
                 delay=False, errors=None, *, shm=None, autostart=True,
                 on_full="block", timeout=1.0):
        # As the standard library: with maxBytes, the mode is append.
        if maxBytes > 0:
            mode = "a"
        _check_mode(mode)
        self.mode, self.maxBytes, self.backupCount = mode, maxBytes, backupCount
        # "If either of maxBytes or backupCount is zero, rollover never occurs."
        rotation = []
        if maxBytes > 0 and backupCount > 0:
            rotation = ["--max-bytes", str(maxBytes), "--backup-count", str(backupCount)]
        path = os.path.abspath(os.fspath(filename))
        RingHandler.__init__(self, shm or _autostart.segment_name(path), on_full, timeout)
        self._setup(path, encoding, errors, autostart, rotation)


class FileHandler(_DropIn, RingHandler):
    """``logging.FileHandler``, written by a ringflush flusher (see the
    module docs)."""

    __module__ = "ringflush"  # the path configs name it by

    def __init__(self, filename, mode="a", encoding=None, delay=False, errors=None, *,
                 shm=None, autostart=True, on_full="block", timeout=1.0):
        _check_mode(mode)
        self.mode = mode
        path = os.path.abspath(os.fspath(filename))
        RingHandler.__init__(self, shm or _autostart.segment_name(path), on_full, timeout)
        self._setup(path, encoding, errors, autostart, [])


class WatchedFileHandler(FileHandler):
    """``logging.handlers.WatchedFileHandler``: the flusher reopens the
    file whenever its path leads elsewhere (it checks before every
    batch), which is what this handler is for."""

    __module__ = "ringflush"  # the path configs name it by


def _check_mode(mode):
    if mode not in ("a", "at", "ab"):
        raise ValueError(
            f"ringflush appends to the log file: mode={mode!r} cannot be honoured "
            "(every process would start it over)")
