"""The migration as users make it: a config that differs from a standard
library TimedRotatingFileHandler config only in the class path, with two
handlers (every record; ERROR only), `when="S"` and the user's formatter,
under gunicorn (with and without --preload), uvicorn --workers 4 (its
--log-config as JSON, YAML and INI, the last through fileConfig), uvicorn
--reload across a reload, Celery's prefork workers, and multiprocessing
pools (spawn, fork, forkserver). No flusher is started by the test: each handler's starts by
itself. Every line arrives exactly once in the right
files, in the user's format, under CPython's rotated names, and no flusher
is left a few seconds after the application exits."""

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from test_dropin import flusher_pid, wait_for
import test_servers
from test_servers import free_port, hammer, wait_ready
from ringflush import _autostart

LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|ERROR) web: request id=(\d+) handled")
ROTATED = re.compile(r"(app|errors)\.log\.\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(\.\d+)?")


def config(stdlib=False):
    cls = "logging.handlers" if stdlib else "ringflush"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"f": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "all": {"class": f"{cls}.TimedRotatingFileHandler", "filename": "logs/app.log",
                    "when": "S", "formatter": "f"},
            "errors": {"class": f"{cls}.TimedRotatingFileHandler", "filename": "logs/errors.log",
                       "when": "S", "formatter": "f", "level": "ERROR"},
        },
        "loggers": {"web": {"handlers": ["all", "errors"], "level": "INFO", "propagate": False}},
    }


def test_the_config_differs_from_the_standard_librarys_only_in_the_class_path():
    ours, theirs = config(), config(stdlib=True)
    for h in ours["handlers"].values():
        h["class"] = h["class"].replace("ringflush.", "logging.handlers.")
    assert ours == theirs


APP = """
    import logging
    log = logging.getLogger("web")
    def handle(rid):
        rid = int(rid)
        if rid and rid % 10 == 0:
            log.error("request id=%d handled", rid)
        else:
            log.info("request id=%d handled", rid)
"""


def check(tmp_path, sent):
    logs = tmp_path / "logs"
    files = sorted(os.listdir(logs))
    seen = {"app": [], "errors": []}
    for name in files:
        if name.endswith(".ringflush-errors"):
            continue
        kind = name.split(".")[0]
        assert name in ("app.log", "errors.log") or ROTATED.fullmatch(name), name
        for line in (logs / name).read_text().splitlines():
            m = LINE.fullmatch(line)
            assert m, f"{name}: {line!r}"
            if m.group(2) != "0":
                seen[kind].append((m.group(1), int(m.group(2))))
    ids = sorted(i for _, i in seen["app"])
    assert ids == list(range(1, sent + 1)), f"{len(ids)} lines for {sent} requests"
    errors = sorted(i for _, i in seen["errors"])
    assert errors == list(range(10, sent + 1, 10)), f"{len(errors)} error lines"
    assert all(level == "ERROR" for level, _ in seen["errors"])
    rotated = [n for n in files if ROTATED.fullmatch(n) and n.startswith("app")]
    assert len(rotated) >= 2, files
    # The application has exited: both flushers end by themselves.
    for name in ("app.log", "errors.log"):
        assert wait_for(lambda: flusher_pid(logs / name) == 0, timeout=30), name


@pytest.fixture
def app_dir(tmp_path):
    (tmp_path / "logs").mkdir()
    yield tmp_path
    for name in ("app.log", "errors.log"):
        path = os.path.abspath(tmp_path / "logs" / name)
        try:
            os.unlink("/dev/shm" + _autostart.segment_name(path))
        except FileNotFoundError:
            pass


def serve(app_dir, command):
    sent, err = test_servers.serve(app_dir, command)
    assert "Traceback" not in err and "Logging error" not in err, err[-2000:]
    return sent


@pytest.mark.skipif(shutil.which("gunicorn") is None, reason="gunicorn is not installed")
@pytest.mark.parametrize("preload", [False, True], ids=["fork", "preload"])
def test_gunicorn(app_dir, preload):
    (app_dir / "wsgi_app.py").write_text(textwrap.dedent(APP + """
    def app(environ, start_response):
        handle(environ["PATH_INFO"].rsplit("/", 1)[-1])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    """))
    cfg = config()
    cfg["handlers"]["console"] = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    cfg["handlers"]["error_console"] = {"class": "logging.StreamHandler"}
    (app_dir / "gunicorn_conf.py").write_text(f"logconfig_dict = {cfg!r}\n")
    extra = ["--preload"] if preload else []
    sent = serve(app_dir, lambda port: [
        "gunicorn", "-w", "4", *extra, "-b", f"127.0.0.1:{port}", "-c", "gunicorn_conf.py",
        "wsgi_app:app"])
    check(app_dir, sent)


INI = """
[loggers]
keys=root,web

[handlers]
keys=all,errors

[formatters]
keys=f

[logger_root]
level=WARNING
handlers=

[logger_web]
level=INFO
handlers=all,errors
propagate=0
qualname=web

[handler_all]
class=ringflush.TimedRotatingFileHandler
formatter=f
args=('logs/app.log', 'S')

[handler_errors]
class=ringflush.TimedRotatingFileHandler
level=ERROR
formatter=f
args=('logs/errors.log', 'S')

[formatter_f]
format=%(asctime)s %(levelname)s %(name)s: %(message)s
"""


def write_log_config(app_dir, kind):
    """The config as uvicorn's --log-config takes it: JSON and YAML through
    dictConfig, INI through fileConfig."""
    if kind == "json":
        (app_dir / "log.json").write_text(json.dumps(config()))
    elif kind == "yaml":
        yaml = pytest.importorskip("yaml")
        (app_dir / "log.yaml").write_text(yaml.safe_dump(config()))
    else:
        (app_dir / "log.ini").write_text(INI)
    return f"log.{kind}"


@pytest.mark.skipif(shutil.which("uvicorn") is None, reason="uvicorn is not installed")
@pytest.mark.parametrize("kind", ["json", "yaml", "ini"])
def test_uvicorn_fastapi_workers(app_dir, kind):
    (app_dir / "asgi_app.py").write_text(textwrap.dedent(APP + """
    from fastapi import FastAPI
    app = FastAPI()
    @app.get("/r/{rid}")
    def route(rid: int):
        handle(rid)
        return {"ok": True}
    """))
    log_config = write_log_config(app_dir, kind)
    sent = serve(app_dir, lambda port: [
        "uvicorn", "asgi_app:app", "--workers", "4", "--port", str(port),
        "--log-config", log_config, "--no-access-log"])
    check(app_dir, sent)


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_multiprocessing_pool(app_dir, method):
    # fork: the parent configures logging and logs before the pool forks
    # (its handlers, producers and supervisor are inherited, as under
    # Celery's prefork pool); spawn and forkserver children configure their
    # own in the pool's initializer.
    (app_dir / "pool_app.py").write_text(textwrap.dedent(APP + f"""
    import logging.config, multiprocessing, time
    CONFIG = {config()!r}
    METHOD = {method!r}
    def init():
        if METHOD != "fork":
            logging.config.dictConfig(CONFIG)
    def work(chunk):
        for rid in chunk:
            handle(rid)
            time.sleep(0.005)
    if __name__ == "__main__":
        if METHOD == "fork":
            logging.config.dictConfig(CONFIG)
            handle(0)
        ctx = multiprocessing.get_context(METHOD)
        with ctx.Pool(4, initializer=init) as pool:
            pool.map(work, [range(i, 3001, 4) for i in range(1, 5)])
    """))
    result = subprocess.run([sys.executable, "pool_app.py"], cwd=app_dir, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Logging error" not in result.stderr, result.stderr
    check(app_dir, 3000)


@pytest.mark.skipif(shutil.which("uvicorn") is None, reason="uvicorn is not installed")
def test_uvicorn_reload_keeps_every_line(app_dir):
    # --reload: a supervisor process restarts the server process when the
    # code changes; both configure the handlers from --log-config.
    app = app_dir / "asgi_app.py"
    app.write_text(textwrap.dedent(APP + """
    from fastapi import FastAPI
    app = FastAPI()
    @app.get("/r/{rid}")
    def route(rid: int):
        import os
        handle(rid)
        return {"pid": os.getpid()}
    """))
    (app_dir / "log.json").write_text(json.dumps(config()))
    port = free_port()

    def request(rid):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/r/{rid}", timeout=5) as r:
            return json.load(r)["pid"]

    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "asgi_app:app", "--reload", "--port", str(port),
         "--log-config", "log.json", "--no-access-log"],
        cwd=app_dir, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, server)
        sent = hammer(port)
        first = request(sent + 1)
        # A code change: the server process is replaced. Requests go on
        # until the new one has answered (300 can be done before the
        # reloader notices the change).
        app.write_text(app.read_text() + "\n# changed\n")
        more, pids = 1, {first}
        deadline = time.monotonic() + 60
        while (more < 300 or pids == {first}) and time.monotonic() < deadline:
            try:
                pids.add(request(sent + more + 1))
                more += 1
            except OSError:
                time.sleep(0.1)  # restarting
        assert more >= 300 and pids != {first}, f"{more} requests, server pids {pids}"
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    assert "Reloading" in err, err[-2000:]
    assert "Traceback" not in err and "Logging error" not in err, err[-2000:]
    check(app_dir, sent + more)


def test_celery_prefork_workers(app_dir):
    # Celery's setup_logging signal configures logging in the worker's main
    # process; its prefork pool's children inherit the live handlers.
    pytest.importorskip("celery")
    (app_dir / "broker").mkdir()
    (app_dir / "staging").mkdir()
    (app_dir / "tasks.py").write_text(textwrap.dedent(APP + f"""
    import logging.config
    from celery import Celery
    from celery.signals import setup_logging
    CONFIG = {config()!r}
    app = Celery("tasks", broker="filesystem://")
    app.conf.broker_transport_options = {{
        "data_folder_in": "broker", "data_folder_out": "broker", "polling_interval": 0.05}}
    @setup_logging.connect
    def configure(**kwargs):
        logging.config.dictConfig(CONFIG)
    @app.task
    def handle_task(rid):
        handle(rid)
    """))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "prefork",
         "--concurrency", "4", "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=app_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sent = 2000
    try:
        send = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(f"""
            import os, time
            from tasks import app, handle_task
            # kombu's filesystem transport writes a message in place, and a
            # worker that reads it half-written dies ("Unrecoverable error:
            # JSONDecodeError", with the stdlib's handlers too, on a loaded
            # machine): write each into staging/, then rename it in whole.
            app.conf.broker_transport_options = {{
                **app.conf.broker_transport_options, "data_folder_out": "staging"}}
            for rid in range(1, {sent} + 1):
                handle_task.delay(rid)
                for name in os.listdir("staging"):
                    os.rename(os.path.join("staging", name), os.path.join("broker", name))
                if rid % 200 == 0:
                    time.sleep(0.5)  # spread over a few seconds: rotations
            """)], cwd=app_dir, capture_output=True, text=True, timeout=120)
        assert send.returncode == 0, send.stderr
        logs = app_dir / "logs"

        def handled():
            return sum(len(LINE.findall(p.read_text())) for p in logs.iterdir()
                       if p.name.startswith("app.log") and ".ringflush" not in p.name)
        done = wait_for(lambda: handled() >= sent, timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert done, (handled(), worker.returncode, err[-3000:])
    assert "Traceback" not in err and "Logging error" not in err, err[-2000:]
    check(app_dir, sent)


HOOKS_APP = APP + """
    import gzip, os, re

    def namer(name):
        return name + ".gz"

    def rotator(source, dest):
        with open(source, "rb") as f, gzip.open(dest, "wb") as out:
            out.write(f.read())
        os.remove(source)

    # What apps do after dictConfig: hooks dictConfig cannot set, and a
    # fresh file for each deploy.
    for h in logging.getLogger("web").handlers:
        h.suffix = "%Y%m%d-%H%M%S"
        h.extMatch = re.compile(r"\\d{8}-\\d{6}")
        h.namer, h.rotator = namer, rotator
        h.doRollover()

    def app(environ, start_response):
        handle(environ["PATH_INFO"].rsplit("/", 1)[-1])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
"""
HOOKED = re.compile(r"(app|kept)\.log\.\d{8}-\d{6}(\.\d+)?\.gz")


@pytest.mark.skipif(shutil.which("gunicorn") is None, reason="gunicorn is not installed")
def test_gunicorn_suffix_namer_rotator_and_do_rollover_at_boot(app_dir):
    """gunicorn -w 4, each worker setting suffix/extMatch, the cookbook's
    gzip namer/rotator and calling doRollover() at boot: the stdlib's names,
    one rollover for the deploy (the previous file kept whole), every line
    once (`app`, keeping all) and the stdlib's retention (`kept`, 2)."""
    (app_dir / "wsgi_app.py").write_text(textwrap.dedent(HOOKS_APP))
    cfg = config()
    cfg["handlers"]["all"]["backupCount"] = 0
    cfg["handlers"]["errors"] = dict(cfg["handlers"]["all"], filename="logs/kept.log",
                                     backupCount=2)
    cfg["handlers"]["console"] = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    cfg["handlers"]["error_console"] = {"class": "logging.StreamHandler"}
    (app_dir / "gunicorn_conf.py").write_text(f"logconfig_dict = {cfg!r}\n")
    (app_dir / "logs" / "app.log").write_text("the previous deploy\n")
    sent = serve(app_dir, lambda port: [
        "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}", "-c", "gunicorn_conf.py",
        "wsgi_app:app"])
    logs = app_dir / "logs"
    for name in ("app.log", "kept.log"):
        assert wait_for(lambda: flusher_pid(logs / name) == 0, timeout=30), name
    names = sorted(n for n in os.listdir(logs) if not n.endswith(".ringflush-errors"))
    backups = {kind: [n for n in names if n.startswith(kind + ".log.")] for kind in ("app", "kept")}
    assert all(HOOKED.fullmatch(n) for n in backups["app"] + backups["kept"]), names
    assert len(backups["kept"]) == 2, names
    texts = {n: gzip.open(logs / n, "rt").read() for n in backups["app"]}
    # The deploy's one rollover: the previous file whole, no empty backup.
    previous = [t for t in texts.values() if "previous deploy" in t]
    assert previous == ["the previous deploy\n"], texts
    assert all(texts.values()), texts
    ids = []
    for text in [*texts.values(), (logs / "app.log").read_text()]:
        for line in text.splitlines():
            m = LINE.fullmatch(line)
            if m and m.group(2) != "0":
                ids.append(int(m.group(2)))
    assert sorted(ids) == list(range(1, sent + 1)), f"{len(ids)} lines for {sent} requests"
    assert len(backups["app"]) >= 3, names
