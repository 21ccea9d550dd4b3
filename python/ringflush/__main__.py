"""python -m ringflush --shm /applog --file logs/app.log ... : the flusher
(and every other ringflush subcommand), the same code as the binary."""

import sys

from ._native import main

if __name__ == "__main__":
    sys.exit(main(["ringflush", *sys.argv[1:]]))
