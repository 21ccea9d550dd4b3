"""CPython's own tests of the file handlers, run against ringflush's drop-in
classes: the reference for how far the drop-in's contract goes (issue 21).

    python3 tests/py/cpython_handler_tests.py [-v]

Runs `FileHandlerTest`, `RotatingFileHandlerTest` and
`TimedRotatingFileHandlerTest` of the running interpreter's
`Lib/test/test_logging.py` with `logging.FileHandler` and
`logging.handlers.{Rotating,Timed}FileHandler` replaced by ringflush's, and
every `emit` followed by a `flush()` (the standard library writes in emit;
ringflush's flush() returns once the flusher has written). Prints each test
that fails as `FAILED <id>`, then how many pass. The tests that do not pass
are listed, with the reason, in docs/TESTING.md; python/tests/
test_cpython_contract.py runs this and holds the list.
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


def _patch():
    logging.FileHandler = ringflush.FileHandler
    logging.handlers.RotatingFileHandler = ringflush.RotatingFileHandler
    logging.handlers.TimedRotatingFileHandler = ringflush.TimedRotatingFileHandler
    for cls in (ringflush.FileHandler, ringflush.RotatingFileHandler,
                ringflush.TimedRotatingFileHandler):
        emit = cls.emit

        def flushing_emit(self, record, emit=emit):
            emit(self, record)
            self.flush()

        cls.emit = flushing_emit


def main():
    verbosity = 2 if "-v" in sys.argv else 1
    _patch()
    loader = unittest.TestLoader()
    total = passed = 0
    for name in CLASSES:
        suite = loader.loadTestsFromTestCase(getattr(test_logging, name))
        result = unittest.TextTestRunner(verbosity=verbosity, stream=sys.stderr).run(suite)
        for test, _ in result.failures + result.errors:
            print(f"FAILED {test.id()}")
        failed = len(result.failures) + len(result.errors)
        ran = result.testsRun - len(result.skipped)
        total += ran
        passed += ran - failed
        print(f"{name}: {ran - failed} of {ran} pass")
    print(f"all: {passed} of {total} pass (Python {sys.version.split()[0]})")
    sys.stdout.flush()


def _remove_segments():
    """The tests make a segment per log file: remove them once the tests'
    process and its flushers are gone (a segment a live process uses is not
    removed)."""
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
        code = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child"]).returncode
        _remove_segments()
        sys.exit(code)
