"""The real scenario: gunicorn with 4 sync workers and uvicorn with 4
workers (FastAPI), each logging one line per request through RingHandler
configured by dictConfig, while the flusher rotates every second. Every
request's line must be present exactly once across the rotated files.

The requests are spread over at least ROTATIONS + 1 seconds, however fast
the machine serves them: with `--when S` a rollover falls due one second
after the previous one, so records stamped across that span must cross at
least ROTATIONS rollovers, and the test can require them without a race."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

REQUESTS = 3000
ROTATIONS = 2
# Longer than ROTATIONS rollover periods of one second, with margin for the
# first rollover, which CPython schedules one period after the flusher starts.
MIN_SECONDS = ROTATIONS + 1.5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/r/0?warmup=1", timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def hammer(port):
    """Send requests /r/1, /r/2, ... until at least REQUESTS were served and
    MIN_SECONDS have passed; returns how many were sent."""

    def get(i):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/r/{i}", timeout=30) as r:
            assert r.status == 200
            r.read()

    sent = 0
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        while sent < REQUESTS or time.monotonic() - start < MIN_SECONDS:
            chunk = range(sent + 1, sent + 201)
            list(pool.map(get, chunk))
            sent += len(chunk)
            if sent >= REQUESTS:
                time.sleep(0.05)
    return sent


def check(f, server_stderr, sent):
    ids = []
    per_file = []
    for path in f.files():
        with open(path, encoding="utf-8") as fh:
            found = [int(m.group(1)) for l in fh for m in [re.search(r"request id=(\d+) handled", l)] if m]
        per_file.append([i for i in found if i != 0])
        ids.extend(per_file[-1])
    assert sorted(ids) == list(range(1, sent + 1)), f"{len(ids)} lines for {sent} requests"
    # Rotation happened while requests were logged: at least ROTATIONS of the
    # rotated files hold request lines, and the live file is not all of them.
    rotated_with_requests = sum(1 for found in per_file[:-1] if found)
    assert rotated_with_requests >= ROTATIONS, [len(found) for found in per_file]
    assert "Traceback" not in server_stderr and "Logging error" not in server_stderr, server_stderr[-2000:]
    pids = {int(l.split()[0]) for l in f.lines() if "request id=" in l}
    assert len(pids) >= 2, "requests were served by several worker processes"


def serve(cwd, command):
    """Run `python -m <command(port)>` in `cwd`, send the requests and stop
    it: returns how many were sent and the server's stderr."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", *command(port)], cwd=cwd,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, server)
        sent = hammer(port)
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    return sent, err


def serve_and_check(f, cwd, command):
    """`serve`, then check the log files."""
    sent, err = serve(cwd, command)
    assert f.wait_written(sent)
    f.stop()
    check(f, err, sent)


def logging_config(shm, logger):
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"ring": {"class": "ringflush.RingHandler", "shm": shm}},
        "loggers": {logger: {"handlers": ["ring"], "level": "INFO", "propagate": False}},
    }


@pytest.mark.skipif(shutil.which("gunicorn") is None, reason="gunicorn is not installed")
def test_gunicorn_sync_workers(flusher, shm, tmp_path):
    f = flusher("--when", "S", "--format", "%(process)d %(asctime)s %(message)s")
    (tmp_path / "wsgi_app.py").write_text(textwrap.dedent("""
        import logging
        log = logging.getLogger("web")
        def app(environ, start_response):
            rid = environ["PATH_INFO"].rsplit("/", 1)[-1]
            log.info("request id=%s handled", rid)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
    """))
    config = logging_config(shm, "web")
    # gunicorn merges this over its defaults, whose loggers name these handlers.
    config["handlers"]["console"] = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    config["handlers"]["error_console"] = {"class": "logging.StreamHandler"}
    config["root"] = {"level": "WARNING", "handlers": ["ring"]}
    (tmp_path / "gunicorn_conf.py").write_text(f"logconfig_dict = {config!r}\n")
    serve_and_check(f, tmp_path, lambda port: [
        "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}", "-c", "gunicorn_conf.py", "wsgi_app:app"])


@pytest.mark.skipif(shutil.which("uvicorn") is None, reason="uvicorn is not installed")
def test_uvicorn_fastapi_workers(flusher, shm, tmp_path):
    f = flusher("--when", "S", "--format", "%(process)d %(asctime)s %(message)s")
    (tmp_path / "asgi_app.py").write_text(textwrap.dedent("""
        import logging
        from fastapi import FastAPI
        log = logging.getLogger("api")
        app = FastAPI()
        @app.get("/r/{rid}")
        def handle(rid: int):
            log.info("request id=%d handled", rid)
            return {"ok": True}
    """))
    (tmp_path / "log.json").write_text(json.dumps(logging_config(shm, "api")))
    serve_and_check(f, tmp_path, lambda port: [
        "uvicorn", "asgi_app:app", "--workers", "4", "--port", str(port),
        "--log-config", "log.json", "--no-access-log"])
