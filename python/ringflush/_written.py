"""``flush()`` that means written: wait until the flusher has put in the
file every record committed before the call.

The segment's tails at the call are the mark; the flusher publishes a head
only once everything below it is in the file, so the mark is reached when
every head has passed it (``ringflush_ring::requests``). The per-record
path pays nothing for this: only ``flush()`` looks.

The wait is bounded: a writer stopped between claim and commit, or a
flusher that cannot write, holds the head back, and the application must
not hang on its logger. With no flusher at all it returns at once, unless
this process has just started one, which is given the time to come up.
"""

import os
import time

# How long flush() (and close(), and logging.shutdown()) waits at most.
FLUSH_TIMEOUT = 2.0
# How often it looks.
POLL = 0.001


def wait_written(status, flusher_coming, staged=None, timeout=FLUSH_TIMEOUT):
    """Wait until everything committed to the segment of ``status`` before
    the call is written; returns whether it was within ``timeout``.

    ``flusher_coming()`` says whether a flusher that does not hold the
    segment yet is on its way (one this process just started).
    ``staged()``, if given, says whether a rotation the flusher made is
    still being finished in the background (numbered backups are shifted
    there): those are waited for too, so that the file names are final.
    """
    mark = status.mark()
    deadline = time.monotonic() + timeout
    while not status.reached(mark):
        if not status.flusher_alive() and not flusher_coming():
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    while staged is not None and staged():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True


def staged_rotation(path):
    """A function telling whether ``path`` has a rotated file the flusher's
    background worker has not moved to its numbered name yet
    (``app.log.rotating-<ns>``)."""
    dirname, base = os.path.split(path)
    prefix = base + ".rotating-"

    def staged():
        try:
            return any(n.startswith(prefix) for n in os.listdir(dirname or "."))
        except OSError:
            return False

    return staged
