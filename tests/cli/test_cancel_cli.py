"""`stead runs cancel`: queued runs at once, dead direct runs at once, live ones explained."""

from __future__ import annotations

from stead.core.process import current_owner
from stead.core.runtime import store_for
from stead.store.base import RunRecord


def test_cancel_a_queued_run_and_a_run_whose_process_is_gone(invoke) -> None:
    store = store_for()
    store.create_run(RunRecord(id="queued", flow_name="f", state="Pending", queue="q",
                               created_at=1.0), "enqueued")
    store.create_run(RunRecord(id="orphan", flow_name="f", state="Running", created_at=1.0,
                               owner=f"{current_owner().split('|')[0]}|999999999|1"),
                     "started")
    result = invoke("runs", "cancel", "queued")
    assert result.exit_code == 0 and "Cancelled" in result.stdout
    result = invoke("runs", "cancel", "orphan")
    assert result.exit_code == 0 and "Cancelled" in result.stdout
    assert store.get_run("orphan").state == "Cancelled"
    again = invoke("runs", "cancel", "queued")
    assert again.exit_code == 0 and "Cancelled" in again.stdout


def test_cancel_a_live_direct_run_says_what_to_do_and_a_finished_one_is_refused(invoke
                                                                                ) -> None:
    store = store_for()
    store.create_run(RunRecord(id="alive", flow_name="f", state="Running", created_at=1.0,
                               owner=current_owner()), "started")
    store.create_run(RunRecord(id="done", flow_name="f", state="Completed", created_at=1.0),
                     "started")
    result = invoke("runs", "cancel", "alive")
    assert result.exit_code == 0 and "stop that process" in result.stdout
    assert store.get_run("alive").state == "Cancelling"
    refused = invoke("runs", "cancel", "done")
    assert refused.exit_code == 2 and "Completed" in refused.stderr
