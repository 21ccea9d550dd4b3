"""Per-call cost of `logger.info("request %d handled in %d ms", i, ms)` with
each handler a multi-worker Python app could use, in one run, with 1 and 4
processes logging at once.

    python3 benches/python/handlers.py [--calls N]

Needs `pip install .` (ringflush) and `pip install concurrent-log-handler`.
A ringflush flusher runs (`python -m ringflush`) for the ringflush rows.
"""

import argparse
import logging
import logging.handlers
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time

import ringflush

try:
    from concurrent_log_handler import ConcurrentTimedRotatingFileHandler
except ImportError:  # reported in the table
    ConcurrentTimedRotatingFileHandler = None


def make(kind, directory, shm):
    path = os.path.join(directory, f"{kind}.log")
    if kind == "RingHandler":
        return ringflush.RingHandler(shm=shm), None
    if kind == "ringflush.TimedRotatingFileHandler (drop-in)":
        # Its own segment and a flusher it starts itself, as users get it.
        return ringflush.TimedRotatingFileHandler(os.path.join(directory, "dropin.log"),
                                                  when="midnight"), None
    if kind == "NullHandler (logging's own cost)":
        return logging.NullHandler(), None
    if kind == "FileHandler":
        return logging.FileHandler(path), None
    if kind == "TimedRotatingFileHandler":
        return logging.handlers.TimedRotatingFileHandler(path, when="midnight"), None
    if kind == "QueueHandler+QueueListener":
        q = queue.SimpleQueue()
        listener = logging.handlers.QueueListener(q, logging.FileHandler(path))
        listener.start()
        return logging.handlers.QueueHandler(q), listener
    if kind == "ConcurrentTimedRotatingFileHandler":
        return ConcurrentTimedRotatingFileHandler(path, when="midnight"), None
    raise ValueError(kind)


def worker(kind, directory, shm, calls, out, start):
    if kind == "ringflush.Logger (fast path)":
        log = ringflush.Logger(shm, name="bench")
        start.wait()
        t = time.perf_counter()
        for i in range(calls):
            log.info(f"request {i} handled in {i % 97} ms")
        out.put((time.perf_counter() - t) / calls)
        return
    handler, listener = make(kind, directory, shm)
    if kind != "RingHandler":
        # RingHandler's format is its flusher's --format (a formatter set on
        # it would format in the worker instead, as a FileHandler does).
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log = logging.getLogger(f"bench.{kind}.{os.getpid()}")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    start.wait()  # the processes log at the same time
    t = time.perf_counter()
    for i in range(calls):
        log.info("request %d handled in %d ms", i, i % 97)
    elapsed = time.perf_counter() - t
    if listener:
        listener.stop()
    handler.close()
    out.put(elapsed / calls)


KINDS = [
    "NullHandler (logging's own cost)",
    "RingHandler",
    "ringflush.TimedRotatingFileHandler (drop-in)",
    "ringflush.Logger (fast path)",
    "FileHandler",
    "TimedRotatingFileHandler",
    "QueueHandler+QueueListener",
    "ConcurrentTimedRotatingFileHandler",
]


def main():
    ap = argparse.ArgumentParser()
    # Many short rounds: the best of them lands in a quiet moment for every
    # handler alike on a shared machine.
    ap.add_argument("--calls", type=int, default=3_000)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    shm = f"/rf-pybench-{os.getpid()}"
    directory = tempfile.mkdtemp(prefix="rf-pybench-")
    flusher = subprocess.Popen([sys.executable, "-m", "ringflush", "--shm", shm,
                                "--file", os.path.join(directory, "ring.log"),
                                "--format", "%(asctime)s %(levelname)s %(name)s %(message)s"],
                               stderr=subprocess.DEVNULL)
    time.sleep(1)
    ctx = multiprocessing.get_context("fork")
    results = {}
    try:
        # Rounds over all the handlers, best of the rounds for each: the
        # shared machine changes speed mid-run, and taking turns spreads that
        # over every handler alike.
        for _ in range(args.rounds):
            for kind in KINDS:
                if kind.startswith("Concurrent") and ConcurrentTimedRotatingFileHandler is None:
                    continue
                for procs in (1, 4):
                    out, start = ctx.Queue(), ctx.Barrier(procs)
                    ps = [ctx.Process(target=worker, args=(kind, directory, shm, args.calls, out, start))
                          for _ in range(procs)]
                    for p in ps:
                        p.start()
                    per_call = [out.get() for _ in ps]
                    for p in ps:
                        p.join()
                    mean = sum(per_call) / len(per_call)
                    key = (kind, procs)
                    results[key] = min(mean, results.get(key, mean))
    finally:
        flusher.send_signal(signal.SIGTERM)
        flusher.wait()
        dropin = os.path.join(directory, "dropin.log")
        for name in (shm, ringflush._autostart.segment_name(dropin)):
            try:
                os.unlink("/dev/shm" + name)
            except FileNotFoundError:
                pass
    print(f"Python {sys.version.split()[0]}, {args.calls} calls per process, best of {args.rounds} rounds, "
          f"mean microseconds per logger call (lower is better)\n")
    print("| handler | 1 process | 4 processes |")
    print("|---|---|---|")
    for kind in KINDS:
        if (kind, 1) in results:
            print(f"| {kind} | {results[(kind, 1)] * 1e6:.2f} | {results[(kind, 4)] * 1e6:.2f} |")
    ring = results[("RingHandler", 1)]
    print(f"\nRingHandler: {results[('FileHandler', 1)] / ring:.1f}x faster than FileHandler", end="")
    if ("ConcurrentTimedRotatingFileHandler", 1) in results:
        print(f", {results[('ConcurrentTimedRotatingFileHandler', 1)] / ring:.1f}x faster than "
              "ConcurrentTimedRotatingFileHandler", end="")
    print(f" (1 process); fast path {results[('ringflush.Logger (fast path)', 1)] * 1e6:.2f} us per call")
    # logging's own cost (LogRecord, findCaller...) is paid whatever the
    # handler: what each handler adds on top of it, and the ratios of that.
    floor = results[("NullHandler (logging's own cost)", 1)]
    added = {kind: results[(kind, 1)] - floor for kind in KINDS[1:] if (kind, 1) in results
             and not kind.startswith("ringflush.Logger")}
    print("Added to logging's own cost (1 process, us): " + ", ".join(
        f"{kind} {cost * 1e6:+.2f}" for kind, cost in added.items()))
    if added["RingHandler"] > 0:
        print("Handler cost ratios: " + ", ".join(
            f"{kind} {cost / added['RingHandler']:.1f}x" for kind, cost in added.items()
            if kind != "RingHandler"))

if __name__ == "__main__":
    main()
