"""ringflush: many processes log to one rotating file through a lock-free
ring in shared memory; one flusher process formats, writes and rotates.

Two-line change to an existing logging config: replace the file handler by

    "class": "ringflush.RingHandler", "shm": "/applog"

and start the flusher once: ``python -m ringflush --shm /applog --file
logs/app.log --when midnight --format '%(asctime)s %(levelname)s %(message)s'``.
Formatting happens in the flusher, with the same %-style format string.
"""

import json
import logging
import threading

from ._native import Producer as _Producer
from ._native import RingflushError, RingFullError

__all__ = ["RingHandler", "Logger", "RingflushError", "RingFullError"]

# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}
_FORMATTER = logging.Formatter()


def _utf8(text):
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. undecodable file names) become one U+FFFD
        # each instead of failing the record as FileHandler would.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


class RingHandler(logging.Handler):
    """A logging.Handler that hands each record to the ringflush ring.

    on_full: "block" (wait up to `timeout` seconds for the flusher, then
    drop), "drop" (drop at once) or "raise" (drop and raise RingFullError,
    reported through Handler.handleError). Every drop is counted in the
    segment and reported in the log by the flusher.
    """

    def __init__(self, shm="/applog", on_full="block", timeout=1.0, level=logging.NOTSET):
        super().__init__(level)
        self.shm = shm
        self._producer = _Producer(shm, on_full, timeout)

    def emit(self, record):
        try:
            msg = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = _FORMATTER.formatException(record.exc_info)
            if record.exc_text:
                if msg[-1:] != "\n":
                    msg += "\n"
                msg += record.exc_text
            if record.stack_info:
                if msg[-1:] != "\n":
                    msg += "\n"
                msg += _FORMATTER.formatStack(record.stack_info)
            extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
            created_ns = getattr(record, "created_ns", None) or int(record.created * 1e9)
            self._producer.write(
                record.levelno,
                _utf8(record.name),
                _utf8(msg),
                created_ns,
                _utf8(record.pathname or ""),
                record.lineno or 0,
                _utf8(record.funcName or ""),
                _utf8(record.module or ""),
                record.thread or 0,
                _utf8(record.threadName or ""),
                _utf8(record.processName or ""),
                _utf8(getattr(record, "taskName", None) or ""),
                _utf8(json.dumps(extra, default=str)) if extra else b"",
            )
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


class Logger:
    """The fast path for hot loops: no LogRecord, no handler chain.

    ``log = ringflush.Logger("/applog", name="worker"); log.info("done")``
    """

    def __init__(self, shm="/applog", name="root", on_full="block", timeout=1.0):
        self._producer = _Producer(shm, on_full, timeout)
        self._name = _utf8(name)
        self._local = threading.local()

    def log(self, level, msg):
        local = self._local
        try:
            thread = local.name
        except AttributeError:
            thread = local.name = _utf8(threading.current_thread().name)
        self._producer.log(level, self._name, _utf8(msg), thread)

    def debug(self, msg):
        self.log(logging.DEBUG, msg)

    def info(self, msg):
        self.log(logging.INFO, msg)

    def warning(self, msg):
        self.log(logging.WARNING, msg)

    def error(self, msg):
        self.log(logging.ERROR, msg)

    def critical(self, msg):
        self.log(logging.CRITICAL, msg)
