"""CPython's own tests of the file handlers, run against ringflush's drop-in
classes: the reference for how far the drop-in's contract goes (issue 21).

    python3 tests/py/cpython_handler_tests.py [--wait] [-v]

Runs `FileHandlerTest`, `RotatingFileHandlerTest` and
`TimedRotatingFileHandlerTest` of the running interpreter's
`Lib/test/test_logging.py` with `logging.FileHandler` and
`logging.handlers.{Rotating,Timed}FileHandler` replaced by ringflush's, and
prints how many pass. With `--wait`, every `emit` returns only once the
flusher has written the segment out (what a `flush()` that means written
would give), so the failures left are the contract's, not the timing's.
Not run by CI: most of these fail today, and the count is the measure
(2026-12-02, Python 3.11.7: 2 of 20 pass, with or without --wait).
"""

import glob
import logging
import logging.handlers
import os
import subprocess
import sys
import time
import unittest

import ringflush
from test import test_logging

CLASSES = ("FileHandlerTest", "RotatingFileHandlerTest", "TimedRotatingFileHandlerTest")


def _wait_written(handler, timeout=2.0):
    """Until the handler's segment holds nothing (written and released)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handler._status.pending_bytes() == 0:
            return
        time.sleep(0.002)


def _patch(wait):
    logging.FileHandler = ringflush.FileHandler
    logging.handlers.RotatingFileHandler = ringflush.RotatingFileHandler
    logging.handlers.TimedRotatingFileHandler = ringflush.TimedRotatingFileHandler
    if not wait:
        return
    for cls in (ringflush.FileHandler, ringflush.RotatingFileHandler,
                ringflush.TimedRotatingFileHandler):
        emit = cls.emit

        def waiting_emit(self, record, emit=emit):
            emit(self, record)
            _wait_written(self)

        cls.emit = waiting_emit


def main():
    wait = "--wait" in sys.argv
    verbosity = 2 if "-v" in sys.argv else 1
    _patch(wait)
    loader = unittest.TestLoader()
    total = passed = 0
    for name in CLASSES:
        suite = loader.loadTestsFromTestCase(getattr(test_logging, name))
        result = unittest.TextTestRunner(verbosity=verbosity, stream=sys.stderr).run(suite)
        failed = len(result.failures) + len(result.errors)
        ran = result.testsRun - len(result.skipped)
        total += ran
        passed += ran - failed
        print(f"{name}: {ran - failed} of {ran} pass")
    print(f"all: {passed} of {total} pass (Python {sys.version.split()[0]}, wait={wait})")


def _remove_segments():
    """The tests make a segment per log file and nothing removes them yet
    (issue 22): remove them once the tests' process and its flushers are
    gone (a segment a live process uses is not removed)."""
    time.sleep(6)  # --exit-when-idle flushers leave a few seconds after us
    for path in glob.glob("/dev/shm/ringflush-test_logging-*"):
        subprocess.run([sys.executable, "-m", "ringflush", "rm", "--shm",
                        "/" + os.path.basename(path)], capture_output=True)


if __name__ == "__main__":
    if "--child" in sys.argv:
        main()
    else:
        # The tests run in a child, so that their segments can be removed
        # once it has exited.
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child"])
        _remove_segments()
