"""`msg % args` done by the extension must be Python's, byte for byte; what
it does not take (and what fails) goes the standard library's way. And the
handler's native `handle` must behave like the Python method it replaces."""

import copy
import enum
import gc
import re
import logging
import weakref
from unittest import mock

import pytest

import ringflush


class Sub(str):
    def __str__(self):
        return "from __str__"


class Number(int):
    def __str__(self):
        return "a Number"


class Color(enum.IntEnum):
    RED = 1


class Message:
    def __str__(self):
        return "object message %s"


CASES = [
    ("request %d handled in %d ms", (1, 2)),
    ("%s", ("plain",)),
    ("%s|%s", ("naïve", "日本 ✓ 🎉")),
    ("[%s]", ("",)),
    ("%d %i %s", (-5, 0, 2**63 - 1)),
    ("%d %s", (-(2**63), -(2**63))),
    ("%d %s", (2**63, 10**30)),  # beyond 64 bits: Python formats them
    ("%s %s %d %d", (True, None, False, True)),
    ("%s %d", (1.5, 3.9)),
    ("100%% sure, %s%%", ("yes",)),
    ("%5d|%-4s|%.2f|%r|%x", (42, "ab", 2.0, "q", 255)),
    ("%(a)s and %(b)d", ({"a": "mapping", "b": 7},)),
    ("%s", ({"a": 1},)),
    ("%s %s", ([1, 2], (3, 4))),
    ("%s %s %d", (Sub("x"), Number(5), Number(6))),
    ("%s %d", (Color.RED, Color.RED)),
    ("naïve %s", ("café",)),
    ("%s", ("lone \udcff in an argument",)),
    ("lone \udcff in the message %s", ("x",)),
    ("no args: 100% literal %s", ()),
    (Message(), ("formatted",)),
    (12345, ()),
]

FAILING = [
    ("%d", ("not a number",)),
    ("%s %s", ("one",)),
    ("%s", ("a", "b")),
    ("trailing %", ("x",)),
    ("%z", (1,)),
]


def _replaced(text):
    # The flusher writes lone surrogates as U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _python_message(msg, args):
    record = logging.LogRecord("m", logging.INFO, __file__, 1, msg, args, None)
    return _replaced(record.getMessage())


def test_messages_match_python_formatting(flusher, shm, capsys, logger):
    f = flusher("--format", "%(message)s")
    log = logger("messages", ringflush.RingHandler(shm=shm))
    for msg, args in CASES:
        log.info(msg, *args)
    for msg, args in FAILING:
        log.info(msg, *args)
    log.info("last")
    assert f.wait_written(len(CASES) + 1)
    f.stop()
    expected = [_python_message(msg, args) for msg, args in CASES] + ["last"]
    assert f.lines() == expected
    # Each failure is reported as the standard library reports it.
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == len(FAILING)
    assert re.search(r"TypeError: %d format: a (real )?number is required, not str", err)
    assert "ValueError: unsupported format character 'z'" in err


def test_native_handle_is_the_python_one(flusher, shm, logger):
    f = flusher("--format", "%(message)s")
    log = logger("native-handle")

    # No reference cycle: a dropped handler is freed at once, with its ring.
    ring = ringflush.RingHandler(shm=shm)
    gone = weakref.ref(ring)
    gc.disable()
    try:
        del ring
        assert gone() is None
    finally:
        gc.enable()

    # A subclass's own emit and handle are used, not the native shortcut.
    seen = []

    class Recording(ringflush.RingHandler):
        def emit(self, record):
            seen.append(record.getMessage())
            super().emit(record)

    log.handlers[:] = [Recording(shm=shm)]
    log.info("through %s", "the subclass")
    assert seen == ["through the subclass"]

    # A RecursionError from the record escapes, as from the standard emit.
    class Deep:
        def __str__(self):
            raise RecursionError("deep")

    ring = ringflush.RingHandler(shm=shm)
    log.handlers[:] = [ring]
    with pytest.raises(RecursionError):
        log.info(Deep())

    # emit or handle replaced on the instance or the class is called, as it
    # would be without the native handle.
    with mock.patch.object(ring, "emit") as emit:
        log.info("to the instance's mock")
    emit.assert_called_once()
    with mock.patch.object(ringflush.RingHandler, "emit") as emit:
        log.info("to the class's mock")
    emit.assert_called_once()
    with mock.patch.object(ringflush.RingHandler, "handle") as handle:
        log.info("to the class's handle")
    handle.assert_called_once()

    # A copy writes through its own native handle, even once the original
    # is gone.
    log.handlers[:] = [copy.copy(ringflush.RingHandler(shm=shm))]
    log.info("%s", "from a copy")
    log.handlers[:] = [ring]

    # Filters added or removed after the handler was made are honoured.
    ring.addFilter(lambda r: r.args != ("hidden",))
    log.info("%s", "hidden")
    log.info("%s", "shown")
    ring.filters.clear()
    log.info("%s", "unfiltered")
    assert f.wait_written(4)
    f.stop()
    assert f.lines() == ["through the subclass", "from a copy", "shown", "unfiltered"]
