"""What the drop-in handlers share (``handlers.py``): deciding who formats,
keeping a flusher running, and the parts of the standard library's
FileHandler contract that do not depend on rotation: ``flush()`` that means
written, ``close()``, ``stream``, ``delay`` and ``mode``.
"""

import codecs
import json
import logging
import os
import signal
import sys
import threading
import time

from . import _autostart, _direct, _rotated, _written
from ._native import Handle as _Handle
from ._native import check_format as _check_format
from ._native import RingflushError
from ._ring import RingHandler

_STANDARD_LEVELS = {0, 10, 20, 30, 40, 50}
# The level names the flusher prints (codec.rs `level::name`).
_FLUSHER_LEVEL_NAMES = {0: "NOTSET", 5: "TRACE", 10: "DEBUG", 20: "INFO", 30: "WARNING",
                        40: "ERROR", 50: "CRITICAL"}
# Fields the flusher prints a default of its own for when they are empty.
_NAME_FIELDS = ("name", "funcName", "threadName", "processName")


def _never(record):
    return False


def _dropped(record):
    """emit() after close() of a handler in mode 'w' writes nothing, as
    CPython's FileHandler (bpo-42378)."""
    return True


def check_encoding(encoding, errors):
    if encoding is not None and codecs.lookup(encoding).name != "utf-8":
        raise ValueError(
            f"ringflush writes UTF-8 only: encoding={encoding!r} cannot be honoured")
    if errors not in (None, "strict", "replace"):
        raise ValueError(
            f"ringflush replaces text it cannot encode with U+FFFD: errors={errors!r} "
            "cannot be honoured (use None or 'replace')")


def check_mode(mode):
    if mode not in ("a", "at", "w", "wt"):
        raise ValueError(
            f"ringflush writes text to the log file: mode={mode!r} cannot be honoured "
            "(use 'a' or 'w')")


def _umask():
    """This process's umask, without changing it (Linux: /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


# Ring sizes a drop-in handler tries, largest first, when /dev/shm is short.
RING_SIZES = [8 << 20, 4 << 20, 2 << 20, 1 << 20, 512 << 10, 256 << 10, 128 << 10, 64 << 10]


def _size(n):
    return f"a {n >> 20} MiB ring" if n >= 1 << 20 else f"a {n >> 10} KiB ring"


def flusher_writes(record):
    """Whether the flusher prints this record as logging.Formatter would
    from its fields: an int level it names as the record does, and text
    names. Any other record (``makeLogRecord({...})``, a filter that renamed
    the level) is formatted in the worker."""
    level = record.levelno
    if type(level) is not int or not 0 <= level <= 255:
        return False
    if getattr(record, "levelname", None) != _FLUSHER_LEVEL_NAMES.get(level, f"Level {level}"):
        return False
    attrs = record.__dict__
    return all(type(attrs.get(k)) is str and attrs[k] for k in _NAME_FIELDS)


def plain_formatter(formatter):
    """The flusher's format options for a formatter it reproduces exactly,
    with the names of the fields records must bring (beyond LogRecord's
    attributes) and the formatter's defaults; None when the worker must
    format (see handlers.py's module docs)."""
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


class DropIn:
    """Mixed into ``RingHandler`` by the drop-in classes (see the module
    docs)."""

    # Until _setup has run (RingHandler.__init__ installs the native handle
    # before it), the native handle stays off.
    _first_done = False
    _closed = False
    stream = None
    # Whether its flusher leaves rotated files to this process's namer and
    # rotator (``_rotated.py``); decided when the flusher is started.
    _rotated_by_app = False

    mode = "a"
    # Set when no ring could be made: this process writes the file itself
    # (``_direct.LockedFile``).
    _direct = None

    @staticmethod
    def _check(mode, encoding, errors):
        """What cannot be honoured, refused before any segment is made."""
        check_encoding(encoding, errors)
        check_mode(mode)

    def _join_ring(self, shm, on_full, timeout, path):
        """``RingHandler.__init__`` with the largest ring /dev/shm has room
        for. Returns None, or the error when no ring can be made."""
        for capacity in RING_SIZES:
            try:
                RingHandler.__init__(self, shm, on_full, timeout, capacity=capacity)
            except RingflushError as e:
                # The segment module's own words for a full /dev/shm.
                if "not enough room in /dev/shm" not in str(e):
                    return e
                failure = e
                continue
            if capacity != RING_SIZES[0]:
                sys.stderr.write(f"ringflush: {path}: /dev/shm has no room for an "
                                 f"{RING_SIZES[0] >> 20} MiB ring; using {_size(capacity)}\n")
            return None
        return failure

    def _write_directly(self, failure, kind, filename, kwargs):
        """No ring could be made: write the file as the standard library
        class would, under a lock shared with the other processes, and say
        so once. The app starts and no record is lost."""
        os.makedirs(os.path.dirname(filename) or ".", exist_ok=True)
        inner = _direct.stdlib_handler(kind, filename, kwargs)
        self.baseFilename = inner.baseFilename
        self.encoding, self.delay = inner.encoding, inner.delay
        self.errors = getattr(inner, "errors", None)
        self._said = set()
        self._direct = _direct.LockedFile(self, inner)
        self.stream = inner.stream
        self._emit_fast = self._direct.emit
        sys.stderr.write(f"ringflush: {self.baseFilename}: no ring could be made ({failure}); "
                         "this process writes the file itself, with a lock per record\n")
        sys.stderr.flush()

    def _setup(self, filename, mode, encoding, errors, delay, autostart, rotation):
        self.baseFilename = os.path.abspath(os.fspath(filename))
        self.mode, self.encoding, self.errors, self.delay = mode, encoding, errors, delay
        self._autostart = autostart
        self._rotation = rotation
        self._said = set()
        self._last_start = float("-inf")
        self._no_flusher_since = None
        self._served = None
        self._other_config = None
        self._first_done = False
        self._first_lock = threading.Lock()
        self._supervise_lock = threading.Lock()
        self._configure_formatting(None)
        if mode.startswith("w") and self._producer.created_segment:
            # The first process of a run starts the file over; the others,
            # joining its segment, append (their records are the run's too).
            self._open("w").close()
        self.stream = None if delay else self._open()
        _autostart.SUPERVISOR.watch(self)

    def _after_fork_in_child(self):
        """This thread's copy of a lock another thread of the parent held
        at the fork would stay held: new ones (the supervisor calls this)."""
        self._first_lock = threading.Lock()
        self._supervise_lock = threading.Lock()

    def _open(self, mode="a"):
        """The log file as the standard library opens it (created with
        0666 & ~umask). Records never go through it: the flusher writes."""
        os.makedirs(os.path.dirname(self.baseFilename) or ".", exist_ok=True)
        return open(self.baseFilename, mode, encoding="utf-8", errors=self.errors)

    def setStream(self, stream):
        """As StreamHandler.setStream: returns the old stream (records
        still go to the log file, through the flusher)."""
        if stream is self.stream:
            return None
        old, self.stream = self.stream, stream
        return old

    # -- formatting --------------------------------------------------------

    def setFormatter(self, fmt):
        if self._direct is not None:
            return logging.Handler.setFormatter(self, fmt)
        super().setFormatter(fmt)
        self._configure_formatting(fmt)

    def _ring_formats(self, fmt):
        """RingHandler's own choice; the drop-in decides in
        _configure_formatting."""

    def _configure_formatting(self, fmt):
        plain = plain_formatter(fmt or logging.Formatter())
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
        if self._closed and self.mode.startswith("w"):
            self._emit_fast = _dropped
            self.__dict__.pop("handle", None)
        elif not self._first_done:
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
        self._start_once()
        return self._emit_fast(record) if self._emit_fast is not self._first_record else False

    def _start_once(self):
        """Before this handler's first record (or flush, or rollover): the
        formatting decided again (level names are often registered after
        the config is loaded), the rotation hooks read, the file opened if
        ``delay`` put it off, and a flusher started if none runs."""
        with self._first_lock:
            if self._first_done:
                return
            self._first_done = True
            self._rotated_by_app = self._hands_off()
            self._configure_formatting(self.formatter)
            if self.stream is None and not self._closed:
                self.stream = self._open()
            self._supervise()

    def _hands_off(self):
        """Whether rotated files are the application's to name (namer,
        rotator, suffix): the rotating classes say."""
        return False

    def _install_native_handle(self):
        if not self._first_done or self._worker_formats or self._extra_fields:
            return
        self.handle = _Handle(self._producer, self, RingHandler.handle, RingHandler.emit).handle

    def _emit(self, record):
        if self._worker_formats or not flusher_writes(record):
            # The whole line: the flusher may format this handler's other
            # records itself.
            return self._write_text(record, self.format(record), formatted=True)
        for name in self._extra_fields:
            if name not in record.__dict__ and name not in self._defaults:
                # What CPython's Formatter raises (then Handler.handleError).
                raise ValueError(f"Formatting field not found in record: {name!r}")
        return self._write_fields(record, exc_in_extra=True)

    # -- written, closed ---------------------------------------------------

    def flush(self):
        """Return once the flusher has written every record this process
        committed before the call (at most ``FLUSH_TIMEOUT``, 2 s; at once
        with no flusher), and rotated files are named (``_rotated.py``)."""
        if self._direct is not None:
            return self._direct.flush()
        if "_said" not in self.__dict__:  # its __init__ failed
            return None
        if not self._first_done and self._status.pending_bytes() > 0:
            self._start_once()
        if self._first_done:
            staged = _written.staged_rotation(self.baseFilename) if self._stages_rotations() else None
            written = _written.wait_written(self._status, self._flusher_coming, staged)
            if not written and self._status.flusher_alive():
                # Not lost: they stay in the segment until the flusher
                # catches up. But a caller reading the file next must know.
                self._say_once("flush-timeout", (
                    f"flush() gave up after {_written.FLUSH_TIMEOUT:g} s with records not yet "
                    "in the file: the flusher is behind or stopped; they are written when "
                    "it catches up"))
        if self._names_rotated_files():
            self._finish_pending(wait=_written.FLUSH_TIMEOUT)

    def _names_rotated_files(self):
        """Whether this process finishes rotated files (its hooks are set;
        a crashed process may have left some even before it logs)."""
        return self._rotated_by_app or self._hands_off()

    def _stages_rotations(self):
        """Whether the flusher finishes this handler's rotations in the
        background (numbered backups)."""
        return False

    def _flusher_coming(self):
        return self._autostart and time.monotonic() - self._last_start < _autostart.START_AGAIN_AFTER

    def close(self):
        if "_said" not in self.__dict__:  # its __init__ failed
            return super().close()
        if self._direct is not None:
            self._direct.close()
            self._closed = True
            return logging.Handler.close(self)
        _autostart.SUPERVISOR.forget(self)
        try:
            self.flush()
        finally:
            stream, self.stream = self.stream, None
            if stream is not None and stream is not sys.stderr and hasattr(stream, "close"):
                stream.close()
            self._closed = True
            self._configure_formatting(self.formatter)
            super().close()

    def _finish_pending(self, wait=0.0):
        try:
            _rotated.apply_pending(self, wait)
        except Exception as e:
            self._say_once("rotator", f"finishing a rotated file failed: {e!r}; "
                           "it stays as it is and is tried again")

    # -- the flusher -------------------------------------------------------

    def _flusher_args(self):
        file_mode = f"{0o666 & ~_umask():o}"
        by_app = ["--rotated-by-app"] if self._rotated_by_app else []
        return ["--shm", self.shm, "--file", self.baseFilename, *self._rotation, *by_app,
                *self._format_args, "--file-mode", file_mode, "--exit-when-idle", "--timestamps"]

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
        if self._names_rotated_files():
            self._finish_pending()
        self._follow_schedule()

    def _follow_schedule(self):
        """Keep attributes that mirror the flusher's schedule current."""

    def _supervise_locked(self):
        status = self._status
        now = time.monotonic()
        # The flusher's lock, seen from any PID namespace (a sidecar's too).
        if status.flusher_alive() and not self._restarted_for_hooks(status):
            pid = status.flusher_pid()
            self._no_flusher_since = None
            running = status.flusher_args()
            mine = self._flusher_args()
            # Before its first record this handler's own arguments are not
            # decided yet (hooks set after the config are read then). A
            # flusher publishes its arguments just after taking the lock:
            # a difference counts once seen on two looks in a row.
            seen, self._other_config = self._other_config, None
            if (self._autostart and self._first_done and running
                    and output_args(running) != output_args(mine)):
                self._other_config = (pid, tuple(running))
                if seen == self._other_config:
                    self._report_other_config(pid, running, mine)
            return
        if self._autostart:
            # Nothing of this handler's to write yet, and nothing waiting:
            # no flusher needed (and the hooks user code sets after the
            # config are read when one is).
            if not self._first_done and status.pending_bytes() == 0:
                return
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

    def _restarted_for_hooks(self, status):
        """A namer, rotator or suffix set after this handler's first record
        (its flusher already runs without ``--rotated-by-app``): stop that
        flusher (it drains and exits; once only, and only one with exactly
        this handler's other arguments, in this PID namespace) so that one
        with them starts now. Returns whether it is gone."""
        if not self._first_done or self._rotated_by_app or not self._hands_off():
            return False
        before = self._flusher_args()
        self._rotated_by_app = True
        running, pid = status.flusher_args(), status.flusher_pid()
        if (not self._autostart or not status.flusher_here() or "restart" in self._said
                or output_args(running) != output_args(before)):
            return False
        self._said.add("restart")
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return False
        deadline = time.monotonic() + _written.FLUSH_TIMEOUT
        while status.flusher_alive() and status.flusher_pid() == pid:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_written.POLL)
        self._last_start = float("-inf")
        return True

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


def output_args(args):
    """A flusher's arguments less the ones that do not change what it
    writes: a sidecar started without ``--exit-when-idle`` (it should run
    on) writes the file as this handler's own flusher would; ``--file-mode``
    follows each starter's umask."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--file-mode":
            skip = True
        elif a != "--exit-when-idle":
            out.append(a)
    return out
