"""The `stead` command line (Typer + Rich). Only this package imports them.

Started as the `stead` command (or `python -m stead.cli...`), a Ctrl-C while the CLI's
modules are still importing ends it with one line and exit code 130, not a traceback through
half-imported libraries; `main()` restores Python's handler before the command runs.
"""

import os
import signal
import sys
import threading


def _interrupted_while_starting(signum: int, frame: object) -> None:
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    os._exit(130)  # nothing is open yet: no database, no run


def _started_as_command() -> bool:
    # While `python -m stead.cli.main` locates its module, argv[0] is "-m".
    return sys.argv[:1] == ["-m"] or os.path.basename(sys.argv[0]) == "stead"


if _started_as_command() and threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, _interrupted_while_starting)
