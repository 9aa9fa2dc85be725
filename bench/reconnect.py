"""How soon a worker claims again after PostgreSQL comes back from an outage.

Starts a throwaway cluster (tests/postgres.py), a real `stead worker start` on it, stops the
server for --down seconds (longer than STEAD_STORE_RETRY_SECONDS, 60 by default, to go past
the store's retry window), starts it again, enqueues one run and reports how long after the
server answered again the worker started it (the run's first Running timestamp, read from
its history; same host, same clock).

    cd REPO && PYTHONPATH=$PWD/src:$PWD python bench/reconnect.py --down 70
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "scripts")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down", type=float, default=70.0, help="seconds the server is down")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    from tests.postgres import Cluster, create_database

    cluster = Cluster()
    worker = None
    tmp = Path(tempfile.mkdtemp(prefix="stead-reconnect-"))
    try:
        url = create_database(cluster.url, "stead_reconnect")
        os.environ["STEAD_DATABASE_URL"] = url
        os.environ["STEAD_CONSOLE"] = "0"
        import queued_flows

        from stead.core.runtime import close_stores, store_for

        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        log = open(tmp / "worker.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen([sys.executable, "-m", "stead.cli.main", "worker", "start",
                                   "-q", "q", "-c", "1", "--lease", "10", "--poll", "0.05"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        out = str(tmp / "effects.txt")
        db = store_for(url)
        first = queued_flows.twenty.enqueue(out=out, n=1, queue="q")
        _wait(lambda: db.get_run(first).state == "Completed", 60)
        for _ in range(args.rounds):
            close_stores()
            cluster._ctl("stop", "-m", "fast")
            time.sleep(args.down)
            cluster._ctl("start")
            back = time.time()
            db = store_for(url)
            run_id = queued_flows.twenty.enqueue(out=out, n=1, queue="q")
            _wait(lambda s=db, rid=run_id: s.get_run(rid).state == "Completed", 300)
            started = next(c.at for c in db.run_history(run_id) if c.state == "Running")
            print(f"down {args.down:g} s: the worker started a run {started - back:.2f} s "
                  "after the server answered again")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        cluster.stop()
        print(f"worker log: {tmp / 'worker.log'}")


def _wait(check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout} s")


if __name__ == "__main__":
    main()
