"""RingHandler's options and the record fields it must carry intact: stack
text, the full-ring policies (drop, block with a timeout, what a bad value
does), and the record's own timestamp, through both the extension's fast
path and the Python path."""

import contextlib
import inspect
import json
import logging
import signal
import time

import pytest

import ringflush
from ringflush import _native

from conftest import run


def _stat(shm):
    out = run("stat", "--shm", shm, "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _fill(shm, size=1000):
    """Fill the ring (no flusher draining it) until not even a record with an
    empty message fits, so that no record a handler writes can; returns how
    many records did fit. Two did not, and were counted as dropped."""
    # Its own producer, not ringflush.Logger's shared one: the mapping goes
    # with it.
    log = _native.FastLogger(_native.Producer(shm, "raise", 0.0), "filler")
    written = 0
    for text in ("f" * size, ""):
        for _ in range(10_000_000):
            try:
                log.info(f"filler {written} {text}")
            except ringflush.RingFullError:
                break
            written += 1
        else:
            raise AssertionError("the ring never filled")
    return written


FILL_DROPS = 2


@contextlib.contextmanager
def _stopped(proc):
    """The flusher stopped (SIGSTOP): alive by its heartbeat for up to 3 s,
    but draining nothing. Resumed on the way out."""
    proc.send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 10
        while True:
            with open(f"/proc/{proc.pid}/stat") as fh:
                # "pid (comm) state ...": the state follows the last ')'.
                if fh.read().rsplit(")", 1)[1].split()[0] == "T":
                    break
            assert time.monotonic() < deadline, "the flusher did not stop"
            time.sleep(0.005)
        yield
    finally:
        proc.send_signal(signal.SIGCONT)


def _collect_errors(handler):
    """What reaches the handler's handleError, instead of stderr."""
    errors = []
    handler.handleError = errors.append
    return errors


# --- stack_info ----------------------------------------------------------


@pytest.mark.parametrize("extra", [None, {"request": "r-17"}], ids=["fast path", "python path"])
def test_stack_info_puts_cpythons_stack_text_and_the_callers_frame_in_the_log(flusher, shm, logger, extra):
    f = flusher("--format", "%(levelname)s %(message)s")
    log = logger("stacked", ringflush.RingHandler(shm=shm))

    def caller_of_log():
        log.warning("where am I", stack_info=True, extra=extra)
        return inspect.currentframe().f_lineno - 1

    line = caller_of_log()
    assert f.wait_written(1)
    f.stop()
    text = "\n".join(f.lines())
    assert text.startswith("WARNING where am I\nStack (most recent call last):\n")
    assert f'File "{__file__}", line {line}, in caller_of_log\n' in text
    assert 'log.warning("where am I", stack_info=True, extra=extra)' in text


# --- on_full="drop" ------------------------------------------------------


def test_drop_policy_never_raises_and_counts_every_record_that_did_not_fit(flusher, shm, logger):
    # A 64 KiB segment, left behind by a flusher that is gone again.
    flusher("--size", "64K").stop()
    ring = ringflush.RingHandler(shm=shm, on_full="drop")
    errors = _collect_errors(ring)
    log = logger("dropping", ring)
    logged = 300
    for seq in range(logged):
        log.info("seq=%d %s", seq, "d" * 500)
    assert errors == []
    dropped = _stat(shm)["dropped"]
    assert 0 < dropped < logged

    f = flusher("--format", "%(message)s")
    assert f.wait_written(logged - dropped)
    f.stop()
    lines = f.lines()
    arrived = [int(l.split()[0][4:]) for l in lines if l.startswith("seq=")]
    assert len(arrived) + dropped == logged
    # What fitted is what came first, each once and in order.
    assert arrived == list(range(logged - dropped))
    # And the flusher tells in the log how many were lost.
    records = "record" if dropped == 1 else "records"
    assert any(l.startswith(f"ringflush: {dropped} {records} dropped") for l in lines)


# The full-ring policies on the shared ring alone (--lanes 0): with lanes the
# handler's thread would find room in a lane of its own.


def test_drop_policy_does_not_wait_even_while_a_flusher_is_alive(flusher, shm, logger):
    f = flusher("--size", "64K", "--lanes", "0")
    ring = ringflush.RingHandler(shm=shm, on_full="drop", timeout=5.0)
    errors = _collect_errors(ring)
    log = logger("dropping", ring)
    with _stopped(f.proc):
        _fill(shm)
        start = time.monotonic()
        log.info("no room for this one")
        took = time.monotonic() - start
    # "block" would wait the whole 5 s for the stopped flusher.
    assert took < 2.5
    assert errors == []
    assert _stat(shm)["dropped"] == FILL_DROPS + 1
    f.stop()
    assert "no room for this one" not in "\n".join(f.lines())


# --- on_full="block" with a timeout -------------------------------------


def test_block_policy_waits_the_timeout_for_a_live_but_stopped_flusher_then_drops(flusher, shm, logger):
    timeout = 1.0
    f = flusher("--size", "64K", "--lanes", "0", "--format", "%(message)s")
    ring = ringflush.RingHandler(shm=shm, on_full="block", timeout=timeout)
    errors = _collect_errors(ring)
    log = logger("blocking", ring)
    with _stopped(f.proc):
        filled = _fill(shm)
        start = time.monotonic()
        log.info("waited for room")
        waited = time.monotonic() - start
    assert waited >= 0.8 * timeout
    assert waited < 30
    assert errors == []
    assert _stat(shm)["dropped"] == FILL_DROPS + 1
    assert f.wait_written(filled)
    f.stop()
    lines = f.lines()
    assert sum(l.startswith("filler ") for l in lines) == filled
    assert "waited for room" not in lines


def test_block_policy_drops_at_once_when_no_flusher_ever_ran(shm, logger):
    made = _native.Producer(shm, "raise", 0.0, lanes=0)  # creates the segment
    ring = ringflush.RingHandler(shm=shm, on_full="block", timeout=5.0)
    errors = _collect_errors(ring)
    log = logger("blocking", ring)
    _fill(shm, size=60_000)
    start = time.monotonic()
    log.info("nobody drains this ring")
    took = time.monotonic() - start
    assert took < 1.0
    assert errors == []
    stat = _stat(shm)
    assert stat["flusher"]["pid"] == 0
    assert stat["dropped"] == FILL_DROPS + 1
    del made


# --- timeout and on_full validation --------------------------------------


@pytest.mark.parametrize("timeout", [-1, float("nan")])
def test_a_block_timeout_that_is_not_a_finite_non_negative_number_is_a_value_error(shm, timeout):
    with pytest.raises(ValueError, match=r"^invalid timeout "):
        ringflush.RingHandler(shm=shm, on_full="block", timeout=timeout)
    with pytest.raises(ValueError, match=r"^invalid timeout "):
        ringflush.Logger(shm, on_full="block", timeout=timeout)


def test_an_unknown_on_full_is_a_value_error_naming_the_choices(shm):
    with pytest.raises(ValueError) as raised:
        ringflush.RingHandler(shm=shm, on_full="wait")
    message = str(raised.value)
    assert message.startswith('invalid on_full "wait"')
    for choice in ("block", "drop", "raise"):
        assert f'"{choice}"' in message


# --- the record's own timestamp ------------------------------------------


def _dated(created):
    """A filter that dates the record back to `created`, as LogRecord would
    have had it been made then."""

    def at(record):
        record.created = created
        if hasattr(record, "created_ns"):  # Python 3.13+
            record.created_ns = round(created * 10**3) * 10**6
            record.msecs = (record.created_ns // 10**6) % 1000 + 0.0
        else:
            record.msecs = int((created - int(created)) * 1000) + 0.0
        return True

    return at


def _python_renders(fmt, datefmt, created, message):
    """Python's own Formatter in UTC, for the same record."""
    python = logging.Formatter(fmt, datefmt)
    python.converter = time.gmtime
    record = logging.LogRecord("dated", logging.INFO, __file__, 1, message, (), None)
    _dated(created)(record)
    return python.format(record)


FORMATS = [
    ("%(created)f %(msecs)03d %(message)s", None),
    ("%(asctime)s,%(msecs)03d %(message)s", "%Y-%m-%dT%H:%M:%S"),
]


def _log_dated(flusher, shm, logger, monkeypatch, fmt, datefmt, created):
    """One plain record (the extension's fast path) and one with extra
    fields (the Python path), both made at `created`; the log's lines."""
    monkeypatch.setenv("TZ", "UTC")  # the flusher's local time
    f = flusher("--format", fmt, *(["--datefmt", datefmt] if datefmt else []))
    log = logger("dated", ringflush.RingHandler(shm=shm))
    log.addFilter(_dated(created))
    log.info("plain record")
    log.info("record with extra", extra={"request": "r-17"})
    assert f.wait_written(2)
    f.stop()
    return f.lines()


# 2021-05-04 03:02:01.5 UTC: its nanoseconds are exact in a double.
PAST = 1620097321.5


@pytest.mark.parametrize("fmt, datefmt, expected", [
    (*FORMATS[0], "1620097321.500000 500 "),
    (*FORMATS[1], "2021-05-04T03:02:01,500 "),
], ids=["created", "asctime"])
def test_the_log_line_carries_the_records_created_time_not_the_flushers_clock(
    flusher, shm, logger, monkeypatch, fmt, datefmt, expected
):
    lines = _log_dated(flusher, shm, logger, monkeypatch, fmt, datefmt, PAST)
    assert lines == [expected + "plain record", expected + "record with extra"]
    assert _python_renders(fmt, datefmt, PAST, "plain record") == expected + "plain record"


# 2021-05-04 03:02:01.125 UTC: exact in a double, but 1620097321.125 * 1e9 is
# not, and rounds down to ...124999936 ns.
ON_A_MILLISECOND = 1620097321.125


@pytest.mark.parametrize("fmt, datefmt, expected", [
    (*FORMATS[0], "1620097321.125000 125 "),
    (*FORMATS[1], "2021-05-04T03:02:01,125 "),
], ids=["created", "asctime"])
def test_a_created_time_on_a_millisecond_keeps_that_millisecond(
    flusher, shm, logger, monkeypatch, fmt, datefmt, expected
):
    lines = _log_dated(flusher, shm, logger, monkeypatch, fmt, datefmt, ON_A_MILLISECOND)
    assert _python_renders(fmt, datefmt, ON_A_MILLISECOND, "plain record") == expected + "plain record"
    assert lines == [expected + "plain record", expected + "record with extra"]
