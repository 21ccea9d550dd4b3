"""loguru and structlog, as their users would wire them, with the real
packages, from several processes: loguru's standard-Handler sink with the
drop-in handler (rotating every second) and with RingHandler into
`--format json`; structlog over stdlib logging with ProcessorFormatter's
JSON on a drop-in handler; and structlog's native route, event dicts
straight into the ring."""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from test_dropin import flusher_pid, wait_for

loguru = pytest.importorskip("loguru")
structlog = pytest.importorskip("structlog")

PROCS = 4


def run_spawned(tmp_path, body, timeout=180):
    """Run `body` (defining `work(i)`) in PROCS spawned processes."""
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(body) + textwrap.dedent(f"""
        if __name__ == "__main__":
            import multiprocessing
            with multiprocessing.get_context("spawn").Pool({PROCS}) as pool:
                pool.map(work, range({PROCS}))
    """))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert "Logging error" not in result.stderr, result.stderr
    return result


def all_lines(directory, prefix):
    out = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(prefix) and not name.endswith(".ringflush-errors"):
            out.extend((directory / name).read_text().splitlines())
    return out


def test_loguru_through_the_drop_in_handler_rotating(tmp_path):
    run_spawned(tmp_path, """
        import time
        import ringflush
        from loguru import logger
        def work(i):
            logger.remove()
            handler = ringflush.TimedRotatingFileHandler("logs/app.log", when="S")
            logger.add(handler, format="{level} {message} | {extra}")
            log = logger.bind(worker=i)
            for n in range(1500):
                log.info("n={}", n)
                time.sleep(0.002)
            try:
                1 / 0
            except ZeroDivisionError:
                log.exception("failed in worker {}", i)
            log.success("done")
    """)
    logs = tmp_path / "logs"
    assert wait_for(lambda: flusher_pid(logs / "app.log") == 0, timeout=30)
    lines = all_lines(logs, "app.log")
    pattern = re.compile(r"INFO n=(\d+) \| \{'worker': (\d+)\}")
    seen = sorted((int(m.group(1)), int(m.group(2)))
                  for line in lines for m in [pattern.fullmatch(line)] if m)
    assert seen == sorted((n, w) for w in range(PROCS) for n in range(1500))
    text = "\n".join(lines)
    for i in range(PROCS):
        assert f"ERROR failed in worker {i} | {{'worker': {i}}}" in text
        assert f"SUCCESS done | {{'worker': {i}}}" in text
    assert text.count("ZeroDivisionError: division by zero") == PROCS
    rotated = [n for n in os.listdir(logs) if n.startswith("app.log.2")]
    assert len(rotated) >= 2, os.listdir(logs)


def test_loguru_extra_reaches_json_fields(flusher, shm, tmp_path):
    f = flusher("--format", "json")
    run_spawned(tmp_path, f"""
        import ringflush
        from loguru import logger
        def work(i):
            logger.remove()
            logger.add(ringflush.RingHandler({shm!r}), format="{{message}}")
            logger.bind(request_id=f"r-{{i}}").warning("from {{}}", i)
    """)
    assert f.wait_written(PROCS)
    f.stop()
    records = [json.loads(l) for l in f.lines()]
    got = sorted((r["message"], r["levelname"], r["extra"]["request_id"]) for r in records)
    assert got == [(f"from {i}", "WARNING", f"r-{i}") for i in range(PROCS)]


def test_structlog_processor_formatter_json_on_the_drop_in_handler(tmp_path):
    run_spawned(tmp_path, """
        import logging
        import structlog
        import ringflush
        def work(i):
            handler = ringflush.FileHandler("logs/app.log")
            handler.setFormatter(structlog.stdlib.ProcessorFormatter(
                processor=structlog.processors.JSONRenderer(sort_keys=True)))
            root = logging.getLogger()
            root.handlers[:] = [handler]
            root.setLevel(logging.INFO)
            structlog.configure(
                processors=[structlog.stdlib.add_log_level,
                            structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
                logger_factory=structlog.stdlib.LoggerFactory())
            log = structlog.get_logger("app")
            for n in range(200):
                log.info("handled", worker=i, n=n)
    """)
    logs = tmp_path / "logs"
    assert wait_for(lambda: flusher_pid(logs / "app.log") == 0, timeout=30)
    events = [json.loads(l) for l in (logs / "app.log").read_text().splitlines()]
    assert sorted((e["worker"], e["n"]) for e in events) == \
        sorted((w, n) for w in range(PROCS) for n in range(200))
    assert all(e["event"] == "handled" and e["level"] == "info" for e in events)


def test_structlog_native_event_dicts_become_json_fields(flusher, shm, tmp_path):
    f = flusher("--format", "json")
    run_spawned(tmp_path, f"""
        import structlog
        import ringflush
        def work(i):
            structlog.configure(
                processors=[structlog.processors.format_exc_info],
                logger_factory=ringflush.StructlogLoggerFactory({shm!r}))
            log = structlog.get_logger("svc").bind(worker=i)
            for n in range(100):
                log.info("tick", n=n, ratio=n / 4)
            try:
                1 / 0
            except ZeroDivisionError:
                log.exception("failed")
    """)
    assert f.wait_written(PROCS * 101)
    f.stop()
    records = [json.loads(l) for l in f.lines()]
    ticks = [r for r in records if r["message"] == "tick"]
    assert sorted((r["worker"], r["n"]) for r in ticks) == \
        sorted((w, n) for w in range(PROCS) for n in range(100))
    assert all(r["levelname"] == "INFO" and r["name"] == "svc" and r["ratio"] == r["n"] / 4
               for r in ticks)
    failures = [r for r in records if r["message"] == "failed"]
    assert len(failures) == PROCS
    assert all(r["levelname"] == "ERROR" and "ZeroDivisionError" in r["exception"]
               for r in failures)
