"""structlog straight into the ring: a logger factory whose loggers take
structlog's event dicts (the chain's last processor returns the dict, as
with structlog's ``BytesLoggerFactory`` route but without rendering) and
write them as records: ``event`` is the message, the method the level,
``logger`` the logger name, and every other key a structured field, which
``--format json`` writes as a field of the line.

    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.format_exc_info],
        logger_factory=ringflush.StructlogLoggerFactory("/applog"),
    )
"""

import json
import logging
import threading

from ._ring import _shared_producer

_LEVELS = {
    "debug": logging.DEBUG, "info": logging.INFO, "msg": logging.INFO,
    "warning": logging.WARNING, "warn": logging.WARNING, "error": logging.ERROR,
    "exception": logging.ERROR, "critical": logging.CRITICAL, "fatal": logging.CRITICAL,
}


def _utf8(text):
    return str(text).encode("utf-8", "replace")


class StructlogLogger:
    """A structlog logger writing into a ringflush segment (see the module
    docs). Thread-safe and fork-safe, like the producer it writes with."""

    def __init__(self, producer, name=None):
        self._producer = producer
        self._name = _utf8(name or "structlog")

    def _log(self, level, event):
        message = event.pop("event", "")
        name = _utf8(event.pop("logger")) if "logger" in event else self._name
        event.pop("level", None)
        extra = json.dumps(event, default=str).encode("utf-8", "replace") if event else b""
        thread = threading.current_thread()
        self._producer.write(level, name, _utf8(message), 0, b"", 0, b"", b"",
                             threading.get_ident(), _utf8(thread.name), b"", b"", extra)



def _method(level):
    def log(self, *args, **event):
        if args:  # a renderer's string: the message
            event.setdefault("event", " ".join(map(str, args)))
        self._log(level, event)
    return log


for _name, _level in _LEVELS.items():
    setattr(StructlogLogger, _name, _method(_level))
del _name, _level


class StructlogLoggerFactory:
    """structlog's ``logger_factory``: ``StructlogLoggerFactory(shm="/applog",
    on_full="block", timeout=1.0)``; the loggers share one producer."""

    def __init__(self, shm="/applog", on_full="block", timeout=1.0):
        self._producer = _shared_producer(shm, on_full, timeout)

    def __call__(self, *args):
        return StructlogLogger(self._producer, args[0] if args else None)
