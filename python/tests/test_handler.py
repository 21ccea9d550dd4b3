"""RingHandler and the fast path, in one process and across processes."""

import json
import logging
import logging.config
import multiprocessing
import os

import pytest

import ringflush

PER_PROCESS = 20_000


def _log_numbered(shm, worker, count):
    log = logging.getLogger(f"mp.{worker}")
    log.propagate = False
    log.handlers[:] = [ringflush.RingHandler(shm=shm)]
    log.setLevel(logging.INFO)
    for seq in range(count):
        log.info("worker=%d seq=%d", worker, seq)


def _in_forked_child(fn):
    """Run fn in a forked child; returns the child's pid once it exited."""
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _check_numbered(lines, workers, count):
    seen = {w: [] for w in range(workers)}
    for line in lines:
        if "worker=" not in line:
            continue
        rest = line.split("worker=", 1)[1]
        w, s = rest.split(" seq=")
        seen[int(w)].append(int(s.split()[0]))
    for w in range(workers):
        assert seen[w] == list(range(count)), f"worker {w}: {len(seen[w])} records"


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_every_record_once_in_order(flusher, shm, method):
    f = flusher("--format", "%(process)d %(message)s")
    ctx = multiprocessing.get_context(method)
    procs = [ctx.Process(target=_log_numbered, args=(shm, w, PER_PROCESS)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    assert f.wait_written(8 * PER_PROCESS)
    f.stop()
    lines = f.lines()
    _check_numbered(lines, 8, PER_PROCESS)
    # Records carry the child's pid, not the parent's.
    pids = {int(l.split()[0]) for l in lines}
    assert pids == {p.pid for p in procs}


def test_handler_used_before_fork_keeps_working_in_the_child(flusher, shm, logger):
    f = flusher("--format", "%(process)d %(message)s")
    log = logger("forky", ringflush.RingHandler(shm=shm))
    log.warning("parent before fork")
    pid = _in_forked_child(lambda: log.warning("child after fork"))
    assert f.wait_written(2)
    f.stop()
    assert sorted(f.lines()) == sorted([f"{os.getpid()} parent before fork", f"{pid} child after fork"])


def test_dictconfig_formats_in_the_flusher_and_json_carries_extra(flusher, shm, tmp_path):
    f = flusher("--format", "json")
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"ring": {"class": "ringflush.RingHandler", "shm": shm}},
        "loggers": {"app": {"handlers": ["ring"], "level": "INFO", "propagate": False}},
    })
    log = logging.getLogger("app")
    log.info("user %s logged in", "ann", extra={"user_id": 42, "roles": ["admin"]})
    assert f.wait_written(1)
    f.stop()
    (line,) = f.lines()
    rec = json.loads(line)
    assert rec["message"] == "user ann logged in"
    assert rec["levelname"] == "INFO" and rec["name"] == "app"
    assert rec["user_id"] == 42 and rec["roles"] == ["admin"]
    assert rec["funcName"] == "test_dictconfig_formats_in_the_flusher_and_json_carries_extra"
    assert rec["filename"] == "test_handler.py" and rec["process"] == os.getpid()


def test_python_format_string_fields(flusher, shm, logger):
    f = flusher("--format", "%(levelname)s|%(name)s|%(module)s|%(funcName)s|%(lineno)d|%(threadName)s|%(message)s")
    log = logger("fields", ringflush.RingHandler(shm=shm))
    log.error("boom"); line = __import__("inspect").currentframe().f_lineno
    assert f.wait_written(1)
    f.stop()
    assert f.lines() == [f"ERROR|fields|test_handler|test_python_format_string_fields|{line}|MainThread|boom"]


def test_exceptions_unicode_surrogates_and_bad_args(flusher, shm, capsys, logger):
    f = flusher("--format", "%(levelname)s %(message)s")
    log = logger("odd", ringflush.RingHandler(shm=shm), level=logging.DEBUG)
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("failed: %s", "division")
    log.info("naïve café ✓ 日本")
    log.info("lone \udcff surrogate")
    log.info("bad %d args", "not a number")  # handled like the standard library
    assert f.wait_written(3)
    f.stop()
    text = "\n".join(f.lines())
    assert "ERROR failed: division\nTraceback (most recent call last):" in text
    assert "ZeroDivisionError: division by zero" in text
    assert "INFO naïve café ✓ 日本" in text
    assert "INFO lone \ufffd surrogate" in text
    assert "INFO bad" not in text
    assert "--- Logging error ---" in capsys.readouterr().err


def test_record_factories_filters_other_formatters_and_many_names(flusher, shm, logger):
    """What the extension's emit must respect, compared with the Python path."""
    f = flusher("--format", "json")
    ring = ringflush.RingHandler(shm=shm)
    # Another handler formats first: its Formatter adds message and asctime
    # to the record, which are not extra fields.
    other = logging.StreamHandler(open(os.devnull, "w"))
    other.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log = logger("factory", other, ring)

    class Shouting(logging.LogRecord):
        def getMessage(self):
            return super().getMessage().upper()

    old_factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(Shouting)
    try:
        log.info("quiet %s", "words")
    finally:
        logging.setLogRecordFactory(old_factory)

    # The {}-style recipe: LogRecord.getMessage itself replaced.
    plain_get_message = logging.LogRecord.getMessage
    logging.LogRecord.getMessage = lambda r: str(r.msg).format(*r.args)
    try:
        log.info("braces {} {}", "work", 2)
    finally:
        logging.LogRecord.getMessage = plain_get_message

    ring.addFilter(lambda r: "secret" not in r.getMessage())
    log.info("a secret")
    log.info("not filtered")
    ring.filters.clear()

    # More distinct thread and logger names than the name cache keeps.
    import threading

    def named(i):
        logging.getLogger(f"factory.sub{i}").info("from %d", i)

    for i in range(20):
        logging.getLogger(f"factory.sub{i}").propagate = True
        t = threading.Thread(target=named, args=(i,), name=f"worker-{i}")
        t.start()
        t.join()
    assert f.wait_written(23)
    f.stop()
    recs = [json.loads(l) for l in f.lines()]
    assert recs[0]["message"] == "QUIET WORDS"
    assert recs[1]["message"] == "braces work 2"
    assert "asctime" not in recs[0] and set(recs[0]) == set(recs[2])
    assert recs[2]["message"] == "not filtered"
    assert all("secret" not in r["message"] for r in recs)
    for i, r in enumerate(recs[3:]):
        assert (r["name"], r["threadName"], r["message"]) == (f"factory.sub{i}", f"worker-{i}", f"from {i}")


def test_fast_path_logger(flusher, shm):
    f = flusher("--format", "%(levelname)s %(name)s %(threadName)s %(message)s")
    log = ringflush.Logger(shm, name="hot")
    for i in range(1000):
        log.info(f"worker=0 seq={i}")
    log.warning("done")
    assert f.wait_written(1001)
    f.stop()
    lines = f.lines()
    assert lines[-1] == "WARNING hot MainThread done"
    _check_numbered(lines, 1, 1000)


def test_fast_path_threads_fork_and_odd_text(flusher, shm):
    import threading

    f = flusher("--format", "%(process)d %(thread)d %(threadName)s %(message)s")
    log = ringflush.Logger(shm, name="hot")
    log.error("main")
    idents = {}

    def other():
        idents["t"] = threading.get_ident()
        log.critical("from thread")

    t = threading.Thread(target=other, name="side")
    t.start()
    t.join()
    log.info("lone \udcff surrogate")
    with pytest.raises(TypeError):
        log.info(b"bytes are not text")
    pid = _in_forked_child(lambda: log.warning("child"))
    assert f.wait_written(4)
    f.stop()
    me, main = os.getpid(), threading.get_ident()
    assert sorted(f.lines()) == sorted([
        f"{me} {main} MainThread main",
        f"{me} {idents['t']} side from thread",
        f"{me} {main} MainThread lone \ufffd surrogate",
        f"{pid} {main} MainThread child",
    ])


def test_errors_are_exceptions_with_clear_messages(shm, tmp_path):
    with open("/dev/shm" + shm, "wb") as fh:
        fh.write(b"\xa5" * 65536)  # larger than any header: garbage, not short
    with pytest.raises(ringflush.RingflushError, match="not a ringflush segment"):
        ringflush.RingHandler(shm=shm)
    with pytest.raises(ValueError, match="invalid on_full"):
        ringflush.Logger("/rf-py-unused", on_full="sometimes")


def test_raise_policy_raises_ring_full(shm):
    # No flusher, and the smallest ring a flusher would create: fill it.
    from ringflush import _native
    assert _native.main(["ringflush", "stat", "--shm", shm]) == 2  # an error: no segment yet
    log = ringflush.Logger(shm, on_full="raise", timeout=0.0)
    with pytest.raises(ringflush.RingFullError, match="ring full"):
        for _ in range(10_000_000):
            log.info("y" * 1000)
