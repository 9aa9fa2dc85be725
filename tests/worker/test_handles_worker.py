"""A RunHandle waits for real workers: `result()` returns what the worker's run returned,
and raises the run's error when it failed (SQLite, PostgreSQL, and through a server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import queued_flows

import stead
from stead.errors import FlowRunFailed
from tests.worker.conftest import Workers


def test_result_waits_for_a_worker_process(workers: Workers, tmp_path: Path) -> None:
    out = str(tmp_path / "effects.txt")
    handles = [queued_flows.twenty.enqueue(out=out, n=n, queue="h") for n in (3, 4)]
    failing = queued_flows.handled_then_fails.enqueue(out=out, marker=str(tmp_path / "none"),
                                                      queue="h")
    workers.start("-q", "h", "-c", "2")
    assert [h.result(timeout=60) for h in handles] == [3, 6]
    with pytest.raises(FlowRunFailed, match=r"RuntimeError: .*none is missing") as caught:
        stead.get_run(str(failing)).result(timeout=60)
    assert caught.value.run_id == failing
