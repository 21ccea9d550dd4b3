"""The drop-in handlers: a logging config that changes the class path and
nothing else, the user's formatter, a flusher that starts (and ends) by
itself, and clear errors for what cannot be honoured."""

import inspect
import json
import logging
import logging.config
import logging.handlers
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import ringflush
from ringflush import _autostart
from ringflush._native import SegmentStatus

PAIRS = [
    (ringflush.TimedRotatingFileHandler, logging.handlers.TimedRotatingFileHandler),
    (ringflush.RotatingFileHandler, logging.handlers.RotatingFileHandler),
    (ringflush.FileHandler, logging.FileHandler),
    (ringflush.WatchedFileHandler, logging.handlers.WatchedFileHandler),
]


def wait_for(cond, timeout=30.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def flusher_pid(path):
    try:
        return SegmentStatus(_autostart.segment_name(os.path.abspath(path))).flusher_pid()
    except ringflush.RingflushError:
        return 0


@pytest.fixture
def segments():
    """Remove the segments a test's log files got, afterwards: their
    flusher first (it lives while this process, a registered producer,
    does, and would make the segment again under its name)."""
    paths = []
    yield paths.append
    for p in paths:
        pid = flusher_pid(p)
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            wait_for(lambda: flusher_pid(p) != pid, timeout=30)
        try:
            os.unlink("/dev/shm" + _autostart.segment_name(os.path.abspath(p)))
        except FileNotFoundError:
            pass


def run_app(tmp_path, code, timeout=120):
    """Run `code` as a separate Python program in tmp_path."""
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("ours, stdlib", PAIRS, ids=lambda c: c.__name__)
def test_the_signatures_are_the_standard_librarys(ours, stdlib):
    mine = inspect.signature(ours.__init__).parameters
    theirs = inspect.signature(stdlib.__init__).parameters
    positional = [(n, p.default) for n, p in mine.items() if p.kind != p.KEYWORD_ONLY]
    assert positional == [(n, p.default) for n, p in theirs.items()]
    assert ours.__module__ == "ringflush"


@pytest.mark.parametrize("cls, kwargs, expect", [
    (ringflush.TimedRotatingFileHandler, {"encoding": "latin-1"}, "UTF-8 only"),
    (ringflush.TimedRotatingFileHandler, {"when": "fortnight"}, "Invalid rollover interval"),
    (ringflush.TimedRotatingFileHandler, {"when": "W9"}, "Invalid day specified"),
    (ringflush.FileHandler, {"mode": "ab"}, "writes text"),
    (ringflush.RotatingFileHandler, {"mode": "r+"}, "writes text"),
    (ringflush.FileHandler, {"errors": "ignore"}, "errors='ignore'"),
])
def test_what_cannot_be_honoured_is_an_error_at_configuration(tmp_path, cls, kwargs, expect, segments):
    segments(tmp_path / "app.log")
    config = {"version": 1, "handlers": {"file": {
        "class": f"ringflush.{cls.__name__}", "filename": str(tmp_path / "app.log"), **kwargs}}}
    # dictConfig says which handler, with the handler's own error as the cause.
    with pytest.raises(ValueError, match="Unable to configure handler 'file'") as e:
        logging.config.dictConfig(config)
    assert re.search(expect, str(e.value.__cause__)), e.value.__cause__


def test_rotating_mode_w_with_max_bytes_is_append_as_in_the_standard_library(tmp_path, segments):
    segments(tmp_path / "app.log")
    h = ringflush.RotatingFileHandler(tmp_path / "app.log", mode="w", maxBytes=100,
                                      backupCount=1, autostart=False)
    assert h.mode == "a"
    h.close()


APP = """
    import logging, logging.config, sys, time
    FORMAT = {format!r}
    logging.config.dictConfig({{
        "version": 1,
        "formatters": {{"f": {{"format": FORMAT, "style": {style!r}, "datefmt": {datefmt!r}}}}},
        "handlers": {{"file": {{"class": "ringflush.{cls}", "filename": "logs/app.log",
                               "formatter": "f", {extra}}}}},
        "root": {{"level": "INFO", "handlers": ["file"]}},
    }})
    log = logging.getLogger("app.web")
    for i in range({count}):
        log.info("request %d handled", i)
    log.warning("with extra", extra={{"request_id": "r-42"}})
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("failed")
"""


def test_a_dictconfig_app_gets_its_format_and_a_flusher_that_ends_with_it(tmp_path, segments):
    log = tmp_path / "logs" / "app.log"
    segments(log)
    result = run_app(tmp_path, APP.format(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", style="%", datefmt=None,
        cls="TimedRotatingFileHandler", extra='"when": "midnight", "backupCount": 7',
        count=1000))
    assert result.returncode == 0, result.stderr
    assert wait_for(lambda: log.exists() and "failed" in log.read_text())
    # The app has exited: its flusher drains and exits by itself.
    assert wait_for(lambda: flusher_pid(log) == 0, timeout=30)
    text = log.read_text()
    lines = text.splitlines()
    handled = [l for l in lines if "request" in l]
    assert len(handled) == 1000
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO app\.web: request 0 handled",
                        handled[0]), handled[0]
    assert "WARNING app.web: with extra" in text
    # The traceback follows the line, as logging.Formatter puts it.
    assert re.search(r"ERROR app\.web: failed\nTraceback \(most recent call last\):\n", text), text
    assert "ZeroDivisionError: division by zero" in text
    # It removed its segment on the way out, and says it stopped.
    status = tmp_path / "logs" / ".app.log.ringflush-errors"
    assert not os.path.exists("/dev/shm" + _autostart.segment_name(str(log)))
    assert wait_for(lambda: "stopped after writing" in status.read_text(), timeout=30)
    errors = status.read_text()
    assert "flushing" in errors, errors
    # Each line stamped with its time.
    for line in errors.splitlines():
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ringflush: ", line), line
    assert "pid 0" not in errors
    # `ls app.log*` (a shipper's glob) does not pick it up.
    assert not any(n.startswith("app.log.ringflush") for n in os.listdir(tmp_path / "logs"))


class Upper(logging.Formatter):
    def format(self, record):
        return "UPPER " + super().format(record).upper()


def test_any_other_formatter_formats_in_the_worker(tmp_path, segments):
    path = tmp_path / "app.log"
    segments(path)
    h = ringflush.FileHandler(path)
    h.setFormatter(Upper("%(levelname)s %(message)s"))
    logger = logging.getLogger("t-upper")
    logger.handlers[:] = [h]
    logger.propagate = False
    logger.warning("quiet %s", "words")
    assert wait_for(lambda: path.exists() and path.read_text() == "UPPER WARNING QUIET WORDS\n"), \
        path.read_text() if path.exists() else "no file"
    h.close()


@pytest.mark.parametrize("fmt, style", [
    ("{levelname} {args[0]} {message}", "{"),        # indexing: the flusher refuses it
    ("%(levelname)s %(message)s", "%"),               # a registered level name, below
], ids=["indexing", "custom-level"])
def test_what_the_flusher_cannot_reproduce_formats_in_the_worker_as_cpython(
        tmp_path, segments, fmt, style):
    path = tmp_path / "app.log"
    segments(path)
    h = ringflush.FileHandler(path)
    h.setFormatter(logging.Formatter(fmt, style=style))
    logger = logging.getLogger("t-fallback-" + style)
    logger.handlers[:] = [h]
    logger.propagate = False
    logger.setLevel(1)
    logging.addLevelName(25, "NOTICE")
    try:
        record = logger.makeRecord(logger.name, 25, __file__, 1, "note %s", ("x",), None)
        expected = logging.Formatter(fmt, style=style).format(record) + "\n"
        logger.handle(record)
        assert wait_for(lambda: path.exists() and path.read_text() == expected), \
            (path.read_text() if path.exists() else "no file", expected)
    finally:
        del logging._levelToName[25]
        del logging._nameToLevel["NOTICE"]
        h.close()


def test_a_field_the_record_lacks_is_a_logging_error_as_in_cpython(tmp_path, segments, capsys):
    path = tmp_path / "app.log"
    segments(path)
    h = ringflush.FileHandler(path)
    h.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    logger = logging.getLogger("t-missing")
    logger.handlers[:] = [h]
    logger.propagate = False
    logger.warning("with it", extra={"request_id": "r-1"})
    logger.warning("without it")
    assert wait_for(lambda: path.exists() and path.read_text() == "r-1 with it\n")
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err and "Formatting field not found in record: 'request_id'" in err
    h.close()


def test_a_killed_flusher_is_replaced_and_nothing_is_lost_or_doubled(tmp_path, segments):
    log = tmp_path / "logs" / "app.log"
    segments(log)
    app = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import logging, sys, time
        h = __import__("ringflush").FileHandler("logs/app.log")
        h.setFormatter(logging.Formatter("%(message)s"))
        log = logging.getLogger("t"); log.addHandler(h); log.setLevel(logging.INFO)
        for i in range(6000):
            log.info("seq=%d", i)
            time.sleep(0.001)
    """)], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: flusher_pid(log) != 0)
    first = flusher_pid(log)
    assert wait_for(lambda: log.exists() and "seq=500" in log.read_text())
    os.kill(first, signal.SIGKILL)
    killed_at = time.monotonic()
    assert wait_for(lambda: flusher_pid(log) not in (0, first), timeout=30)
    took = time.monotonic() - killed_at
    print(f"a new flusher took over {took:.2f} s after the kill")
    _, err = app.communicate(timeout=120)
    assert app.returncode == 0, err
    assert wait_for(lambda: "seq=5999" in log.read_text())
    seqs = [int(l[4:]) for l in log.read_text().splitlines() if l.startswith("seq=")]
    assert sorted(seqs) == list(range(6000)), "every record exactly once"
    assert took < 5, f"{took:.2f} s"


def test_a_forgotten_flusher_is_said_once(tmp_path, segments):
    path = tmp_path / "app.log"
    segments(path)
    result = run_app(tmp_path, f"""
        import logging, time
        import ringflush
        h = ringflush.FileHandler({str(path)!r}, autostart=False)
        log = logging.getLogger("t"); log.addHandler(h); log.setLevel(logging.INFO)
        log.info("nobody flushes this")
        time.sleep(5)
        log.info("nor this")
        time.sleep(2)
    """)
    assert result.returncode == 0, result.stderr
    said = [l for l in result.stderr.splitlines() if "no flusher has run" in l]
    assert len(said) == 1, result.stderr
    assert _autostart.segment_name(str(path)) in said[0]


def test_a_flush_that_times_out_says_so_once_and_loses_nothing(tmp_path, segments):
    """The flusher stopped (SIGSTOP, as a paused container): flush() returns
    after its 2 s bound and says so; once resumed, everything is written."""
    path = tmp_path / "app.log"
    segments(path)
    result = run_app(tmp_path, f"""
        import logging, os, signal, time
        import ringflush
        from ringflush import _autostart
        from ringflush._native import SegmentStatus
        h = ringflush.FileHandler({str(path)!r})
        h.setFormatter(logging.Formatter("%(message)s"))
        log = logging.getLogger("t"); log.addHandler(h); log.setLevel(logging.INFO)
        log.info("first"); h.flush()
        pid = SegmentStatus(_autostart.segment_name({str(path)!r})).flusher_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            for i in range(3):
                log.info("while stopped %d", i)
            t = time.monotonic(); h.flush(); took = time.monotonic() - t
            print(f"took {{took:.1f}}")
            h.flush()
        finally:
            os.kill(pid, signal.SIGCONT)
        h.flush()
    """)
    assert result.returncode == 0, result.stderr
    said = [l for l in result.stderr.splitlines() if "flush() gave up after 2 s" in l]
    assert len(said) == 1, result.stderr
    assert str(path) in said[0]
    assert all(float(l.split()[1]) >= 1.9 for l in result.stdout.splitlines()), result.stdout
    assert wait_for(lambda: "while stopped 2" in path.read_text())
    assert path.read_text().splitlines() == ["first"] + [f"while stopped {i}" for i in range(3)]


def test_the_console_script_is_the_cli_and_ctrl_c_drains_and_exits_0(tmp_path, segments):
    out = subprocess.run(["ringflush", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--shm" in out.stdout
    shm = f"/rf-py-cli-{os.getpid()}"
    flusher = subprocess.Popen(["ringflush", "--shm", shm, "--file", str(tmp_path / "x.log")],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: SegmentStatus(shm).flusher_pid() == flusher.pid
                        if os.path.exists("/dev/shm" + shm) else False)
        ringflush.Logger(shm).info("before ctrl-c")
        flusher.send_signal(signal.SIGINT)
        _, err = flusher.communicate(timeout=30)
        assert flusher.returncode == 0, err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert (tmp_path / "x.log").read_text().endswith("before ctrl-c\n")
    finally:
        if flusher.poll() is None:
            flusher.kill()
        os.unlink("/dev/shm" + shm)


def test_a_sidecar_with_the_handlers_settings_is_no_other_configuration(tmp_path, capsys):
    # A sidecar runs on: it has everything the handler would ask for but
    # --exit-when-idle, and that is not a different configuration.
    log = tmp_path / "app.log"
    h = ringflush.TimedRotatingFileHandler(str(log), when="midnight", backupCount=3)
    h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    args = [a for a in h._flusher_args() if a != "--exit-when-idle"]
    sidecar = subprocess.Popen([sys.executable, "-m", "ringflush", *args],
                               stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: SegmentStatus(h.shm).flusher_alive())
        h.emit(logging.makeLogRecord({"msg": "hello", "levelno": 20, "levelname": "INFO"}))
        h._supervise()
        assert wait_for(lambda: log.exists() and "hello" in log.read_text())
        assert "configuration wins" not in capsys.readouterr().err
        assert "ringflush: " not in log.read_text()
    finally:
        h.close()
        sidecar.terminate()
        sidecar.wait(30)
        subprocess.run([sys.executable, "-m", "ringflush", "rm", "--shm", h.shm],
                       capture_output=True)
