"""python -m ringflush --shm /applog --file logs/app.log ... : the flusher
(and every other ringflush subcommand), the same code as the binary. Also
the `ringflush` command a pip install makes."""

import signal
import sys

from ._native import main


def run():
    """The `ringflush` console script: the command line's exit code. SIGINT
    gets its default action back, as in the binary: the flusher handles it
    (drains and exits 0), other commands end on it, and no
    KeyboardInterrupt traceback follows."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(main(["ringflush", *sys.argv[1:]]))


if __name__ == "__main__":
    run()
