"""The lower-level handler and the fast path: ``RingHandler`` hands each
record to the ring of a flusher you run and configure yourself (its
``--format`` formats them), ``Logger`` skips LogRecord creation entirely.
The drop-in file handlers (``handlers.py``) build on ``RingHandler``.
"""

import json
import logging

from . import _written
from ._native import FastLogger as _FastLogger
from ._native import Handle as _Handle
from ._native import Producer as _Producer
from ._native import SegmentStatus as _SegmentStatus

__all__ = ["RingHandler", "Logger"]

# Attributes every LogRecord has; anything else came from `extra=`.
_PLAIN_RECORD = logging.LogRecord("", 0, "", 0, "", (), None).__dict__
_PLAIN_COUNT = len(_PLAIN_RECORD)
_STANDARD = frozenset(_PLAIN_RECORD) | {"message", "asctime", "taskName"}
_FORMATTER = logging.Formatter()


_encoded = {}


def _cached(text):
    """UTF-8 of a field that repeats (logger, file, function, thread names)."""
    b = _encoded.get(text)
    if b is None:
        if len(_encoded) > 4096:
            _encoded.clear()
        b = _encoded[text] = _utf8(text or "")
    return b


def _utf8(text):
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. undecodable file names) become one U+FFFD
        # each instead of failing the record as FileHandler would.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def _level_byte(level):
    """The ring's level (0-255) for a record's levelno: None (a
    ``makeLogRecord`` record) and other non-ints are 0, ints are clamped."""
    if type(level) is not int:
        try:
            level = int(level)
        except (TypeError, ValueError):
            return 0
    return min(max(level, 0), 255)


def _text(value):
    """A name field as UTF-8; anything but a str (None, from
    ``makeLogRecord``) as its str(), as Formatter prints it."""
    return _cached(value if type(value) is str else str(value))


def _created_ns(created):
    """LogRecord.created as ns: seconds and fraction apart, because
    `created * 1e9` rounds below a millisecond (.125 became .124999936)."""
    secs = int(created)
    return secs * 1_000_000_000 + int((created - secs) * 1e9)


class RingHandler(logging.Handler):
    """A logging.Handler that hands each record to the ringflush ring.

    on_full: "block" (wait up to `timeout` seconds for the flusher, then
    drop), "drop" (drop at once) or "raise" (drop and raise RingFullError,
    reported through Handler.handleError). Every drop is counted in the
    segment and reported in the log by the flusher.

    mode, allow_foreign: the segment's permission bits when this process
    creates it, and the most an existing one may allow; whether a segment
    owned by another user is accepted (the flusher's --mode and
    --allow-foreign). The defaults refuse a segment another local user
    could read or forge logs through.

    Without a formatter, the flusher's ``--format`` formats the records;
    with one set (``setFormatter``, as dictConfig does), this process
    formats and the flusher writes the text as it is. ``flush()`` returns
    once the flusher has written what this process logged before it.
    """

    __module__ = "ringflush"  # the path configs name it by

    def __init__(self, shm="/applog", on_full="block", timeout=1.0, level=logging.NOTSET,
                 mode=0o600, allow_foreign=False, capacity=None):
        super().__init__(level)
        self.shm = shm
        self._producer = _Producer(shm, on_full, timeout, mode, allow_foreign, capacity)
        self._status = _SegmentStatus(shm)
        self._write = self._producer.write
        self._emit_fast = self._producer.emit
        self._install_native_handle()

    def setFormatter(self, fmt):
        super().setFormatter(fmt)
        self._ring_formats(fmt)

    def _ring_formats(self, fmt):
        """With a formatter, records take the Python path, which formats."""
        if fmt is None:
            self._emit_fast = self._producer.emit
            self._install_native_handle()
        else:
            self._emit_fast = _never
            self.__dict__.pop("handle", None)

    def flush(self):
        """Wait (up to 2 s) until the flusher has written every record this
        process committed before the call; at once when no flusher runs."""
        _written.wait_written(self._status, _nothing_coming)

    def _install_native_handle(self):
        if type(self) is RingHandler and self.formatter is None:
            # The same steps as handle() below, without its Python frames;
            # subclasses keep the Python methods they may override.
            self.handle = _Handle(self._producer, self, RingHandler.handle, RingHandler.emit).handle

    def __getstate__(self):
        # A copy gets its own native handle, not this handler's.
        state = self.__dict__.copy()
        state.pop("handle", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._install_native_handle()

    def handle(self, record):
        # emit() is thread-safe (the ring is lock-free): no handler lock.
        if self.filters:
            return self._handle_filtered(record)
        self.emit(record)
        return True

    def _handle_filtered(self, record):
        rv = self.filter(record)
        if not rv:
            return rv
        if isinstance(rv, logging.LogRecord):
            record = rv
        self.emit(record)
        return rv

    def emit(self, record):
        try:
            # Most records are written by the extension, which reads the
            # attributes itself; the others take _emit below.
            if not self._emit_fast(record):
                self._emit(record)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _handle_replaced(self, record):
        """The native handle found handle or emit replaced: call them as
        attribute lookup would have without it."""
        handle = type(self).handle
        if hasattr(type(handle), "__get__"):
            handle = handle.__get__(self, type(self))
        return handle(record)

    def _from_native(self, record, error=None):
        """The native handle's way back, handled as emit does: a record its
        emit does not take (error None), or the failure it raised."""
        try:
            if error is not None:
                raise error
            self._emit(record)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
        finally:
            error = None  # the traceback holds this frame: no cycle

    def _emit(self, record):
        """Records with exception or stack text, or extra fields, and every
        record once a formatter is set."""
        if self.formatter is not None:
            return self._write_text(record, self.format(record), formatted=True)
        self._write_fields(record, exc_in_extra=False)

    def _write_fields(self, record, exc_in_extra):
        """Write the record's fields; its exception and stack text go after
        the message (``exc_in_extra=False``) or, for a flusher that formats
        like logging.Formatter, into the extra fields as ``exc_text`` and
        ``stack_info``."""
        msg = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        attrs = record.__dict__
        fields = {}
        if len(attrs) > _PLAIN_COUNT:
            fields = {k: attrs[k] for k in attrs.keys() - _STANDARD}
        stack = _FORMATTER.formatStack(record.stack_info) if record.stack_info else None
        if exc_in_extra:
            if record.exc_text:
                fields["exc_text"] = record.exc_text
            if stack:
                fields["stack_info"] = stack
        else:
            for text in (record.exc_text, stack):
                if text:
                    if msg[-1:] != "\n":
                        msg += "\n"
                    msg += text
        extra = _utf8(json.dumps(fields, default=str)) if fields else b""
        self._write_message(record, msg, extra)

    def _write_text(self, record, text, formatted=False):
        """Write ``text`` (formatted in this process) as the record's
        message; ``formatted``: as the whole line, whatever the flusher's
        ``--format``."""
        self._write_message(record, text, b"", formatted)

    def _write_message(self, record, msg, extra, formatted=False):
        attrs = record.__dict__
        try:
            message = msg.encode()
        except UnicodeEncodeError:
            message = _utf8(msg)
        self._write(
            _level_byte(record.levelno),
            _text(record.name),
            message,
            attrs.get("created_ns") or _created_ns(record.created),
            _text(record.pathname),
            _number(record.lineno, 0xFFFF_FFFF),
            _text(record.funcName),
            _text(record.module),
            _number(record.thread, 2**64 - 1),
            _text(record.threadName),
            _text(record.processName),
            _cached(attrs.get("taskName")),
            extra,
            formatted,
        )


def _never(record):
    return False


def _nothing_coming():
    return False


def _number(value, most):
    """An int field (lineno, thread) in range; anything else is 0."""
    return value if type(value) is int and 0 <= value <= most else 0


_producers = {}


def _shared_producer(shm, on_full, timeout):
    """One producer (one mapping of the ring) per segment and policy."""
    key = (shm, on_full, timeout)
    p = _producers.get(key)
    if p is None:
        p = _producers[key] = _Producer(shm, on_full, timeout)
    return p


class Logger(_FastLogger):
    """The fast path for hot loops: no LogRecord, no handler chain, and no
    Python frame: ``info(msg)`` and the other level methods (``debug``,
    ``warning``, ``error``, ``critical``, ``log(level, msg)``) are the
    extension's. ``msg`` is a ``str``, written as it is.

    ``log = ringflush.Logger("/applog", name="worker"); log.info("done")``
    """

    __module__ = "ringflush"

    def __new__(cls, shm="/applog", name="root", on_full="block", timeout=1.0):
        return super().__new__(cls, _shared_producer(shm, on_full, timeout), name)
