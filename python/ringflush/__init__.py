"""ringflush: many processes log to one rotating file through a lock-free
ring in shared memory; one flusher process formats, writes and rotates.

The migration of a logging config is the class path: ``logging.handlers.
TimedRotatingFileHandler`` becomes ``ringflush.TimedRotatingFileHandler``
(and so for ``RotatingFileHandler``, ``FileHandler``, ``WatchedFileHandler``;
``handlers.py``), with the same arguments; a flusher starts by itself.
``RingHandler`` (``_ring.py``) is for a flusher you run yourself, ``Logger``
the fast path for hot loops. See docs/PYTHON.md.
"""

from ._native import RingflushError, RingFullError
from ._ring import Logger, RingHandler
from .handlers import FileHandler, RotatingFileHandler, TimedRotatingFileHandler, WatchedFileHandler
from ._structlog import StructlogLogger, StructlogLoggerFactory

__all__ = [
    "RingHandler", "Logger", "RingflushError", "RingFullError",
    "TimedRotatingFileHandler", "RotatingFileHandler", "FileHandler", "WatchedFileHandler",
    "StructlogLogger", "StructlogLoggerFactory",
]
