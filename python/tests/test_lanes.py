"""Python writers on a segment with lanes (`ringflush --lanes N`): a forked
child takes a lane of its own and never writes into its parent's, and
processes beyond the lanes share the ring; every record arrives once, in
each writer's order."""

import multiprocessing
import os

import pytest

import ringflush
from test_handler import _check_numbered, _log_numbered

PER_PROCESS = 2000


def test_a_forked_child_writes_in_a_lane_of_its_own(flusher, shm, logger):
    f = flusher("--lanes", "4", "--format", "%(process)d %(message)s")
    log = logger("lanes", ringflush.RingHandler(shm=shm))
    for seq in range(100):
        log.info("worker=0 seq=%d", seq)
    logged, go_on = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for seq in range(100):
                log.info("worker=1 seq=%d", seq)
            os.write(logged[1], b"x")
            os.read(go_on[0], 1)  # the parent looks at the lanes meanwhile
            code = 0
        finally:
            os._exit(code)
    assert os.read(logged[0], 1) == b"x"
    taken = f.stat()["lanes"]["taken"]
    os.write(go_on[1], b"x")
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert len(taken) == 2, taken
    assert len({t["registration"] for t in taken}) == 2, f"parent and child share a lane: {taken}"
    assert f.wait_written(200)
    f.stop()
    lines = f.lines()
    _check_numbered(lines, 2, 100)
    by_worker = {l.split()[1].split("=")[1]: int(l.split()[0]) for l in lines}
    assert by_worker == {"0": os.getpid(), "1": pid}
    assert f.stat()["dropped"] == 0


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_more_processes_than_lanes_every_record_once_in_order(flusher, shm, logger, method):
    f = flusher("--lanes", "2", "--format", "%(process)d %(message)s")
    # The parent writes first, so that forked children inherit a lane they
    # must leave alone.
    logger("parent", ringflush.RingHandler(shm=shm)).warning("parent")
    ctx = multiprocessing.get_context(method)
    procs = [ctx.Process(target=_log_numbered, args=(shm, w, PER_PROCESS)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    assert f.wait_written(6 * PER_PROCESS + 1)
    f.stop()
    _check_numbered(f.lines(), 6, PER_PROCESS)
