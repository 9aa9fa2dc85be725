"""A flow outlives a restart of its PostgreSQL server (on a cluster of the test's own)."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SCRIPTS, script_env
from tests.postgres import Cluster, create_database

pytestmark = pytest.mark.slow


def test_flow_completes_across_a_server_restart(stead_home: Path, tmp_path: Path) -> None:
    cluster = Cluster()  # never restart a server someone else started
    try:
        url = create_database(cluster.url, "restart_test")
        out = tmp_path / "out.txt"
        env = script_env(stead_home, CRASH_OUT=str(out), TASK_SLEEP="0.01",
                         STEAD_DATABASE_URL=url)
        proc = subprocess.Popen([sys.executable, str(SCRIPTS / "crash_flow.py"), "pg-restart",
                                 "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        deadline = time.monotonic() + 60
        while not out.exists() or len(out.read_text().split()) < 40:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.01)
        # The flow's connections die mid-run, and the server stays away longer than the
        # pool waits for a connection (5 s): only the store's retries carry the flow over.
        cluster.restart(down_for=8)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        assert stdout.strip() == str(sum(range(200)))
        counts = collections.Counter(int(x) for x in out.read_text().split())
        assert set(counts) == set(range(200)) and max(counts.values()) == 1
    finally:
        cluster.stop()
