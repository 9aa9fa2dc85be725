"""The runtime context, variables, tags, concurrency limits and serving, as Prefect 3's docs
use them; and the Prefect features that belong to later Stead issues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stead.core.runtime import store_for
from stead.store.base import Limit, RunFilter
from tests.conftest import script_env
from tests.prefect_style.registry import Difference, differs, unchanged

DIFFERENCES = [
    Difference("variable_read_is_recorded",
               "inside a flow, Variable.get is a recorded step: a resumed run gets the value "
               "it read before the crash, not the current one",
               "a resumed run must take the same path it took; Prefect reads the current "
               "value again and may take another"),
    Difference("task_run_tags",
               "stead.runtime.task_run has no `tags`; inside a task, `with stead.tags() as "
               "in_effect:` gives the tags of enclosing blocks and the run, not the task's own",
               "not yet (a gap): a task call's own tags are kept for limits, not in the "
               "runtime context"),
    Difference("artifacts",
               "`from prefect.artifacts import create_markdown_artifact`: no stead.artifacts",
               "artifacts are issue 13"),
    Difference("pause_flow_run",
               "`from prefect import pause_flow_run` (and suspend_flow_run, wait_for_input): "
               "not in stead",
               "durable pauses and waiting for input are issue 18"),
    Difference("transactions",
               "`from prefect.transactions import transaction` and on_rollback hooks: not in "
               "stead (stead.step_idempotency_key() gives external calls a stable key)",
               "transactions are issue 14"),
    Difference("emit_event",
               "`from prefect.events import emit_event`: no stead.events",
               "events and automations are issue 12"),
]


def runs(flow_name: str) -> list:
    return store_for().list_runs(RunFilter(flow_name=flow_name, limit=100))


@unchanged
def test_runtime_flow_run() -> None:
    """prefect.runtime.flow_run: the run's id, flow name and parameters inside the flow."""
    from stead import flow, runtime

    @flow
    def whoami(region: str, limit: int = 10) -> dict:
        return {"id": runtime.flow_run.id, "flow": runtime.flow_run.flow_name,
                "params": runtime.flow_run.parameters,
                "deployment": runtime.deployment.name}

    out = whoami("eu")
    assert out["flow"] == "whoami" and out["params"] == {"region": "eu", "limit": 10}
    assert out["deployment"] is None       # not a deployment's run
    assert out["id"] == runs("whoami")[0].id
    assert runtime.flow_run.id is None     # outside any run


@unchanged
def test_runtime_task_run_and_run_count() -> None:
    """prefect.runtime.task_run: its name and parameters; run_count counts the attempts."""
    from stead import flow, runtime, task

    seen = []

    @task(retries=2, retry_delay_seconds=0)
    def flaky(n: int) -> int:
        seen.append((runtime.task_run.task_name, runtime.task_run.parameters,
                     runtime.task_run.run_count))
        if runtime.task_run.run_count < 3:
            raise ConnectionError("again")
        return n

    @flow(retries=1, retry_delay_seconds=0)
    def counting() -> tuple:
        return flaky(5), runtime.flow_run.run_count

    assert counting() == (5, 1)
    assert seen == [("flaky", {"n": 5}, 1), ("flaky", {"n": 5}, 2), ("flaky", {"n": 5}, 3)]


@unchanged
def test_variables() -> None:
    """Variable.set / get (with a default) / set(overwrite=True) / unset."""
    from stead.variables import Variable

    Variable.set("batch_size", 100)
    assert Variable.get("batch_size") == 100
    assert Variable.get("missing", default="fallback") == "fallback"
    with pytest.raises(ValueError):
        Variable.set("batch_size", 200)           # exists: overwrite=True is needed
    Variable.set("batch_size", 200, overwrite=True)
    assert Variable.get("batch_size") == 200
    assert Variable.unset("batch_size") is True
    assert Variable.get("batch_size") is None


@unchanged
def test_variable_in_a_flow() -> None:
    """A flow reads its configuration from a variable."""
    from stead import flow
    from stead.variables import Variable

    Variable.set("regions", ["eu", "us"], tags=["config"])

    @flow
    def fan_out() -> list[str]:
        return [f"processed {r}" for r in Variable.get("regions", default=[])]

    assert fan_out() == ["processed eu", "processed us"]


@differs
def test_variable_read_is_recorded() -> None:
    from stead import flow
    from stead.variables import Variable

    Variable.set("threshold", 10)
    crash = [True]

    @flow
    def check() -> str:
        threshold = Variable.get("threshold")
        if crash[0]:
            raise KeyboardInterrupt      # the process dies here
        return "big" if threshold > 5 else "small"

    with pytest.raises(KeyboardInterrupt):
        check.with_options(run_id="check-1")()
    Variable.set("threshold", 1, overwrite=True)
    crash[0] = False
    assert check.resume("check-1") == "big"   # Prefect would read 1 and say "small"


@unchanged
def test_tags_context_manager() -> None:
    """`with tags("a", "b"):` tags the runs started inside the block."""
    from stead import flow, runtime, tags

    @flow
    def tagged() -> list[str]:
        return sorted(runtime.flow_run.tags)

    with tags("test", "nightly"):
        assert tagged() == ["nightly", "test"]
    assert tagged() == []
    assert sorted(sorted(json.loads(r.tags)) for r in runs("tagged")) == [[], ["nightly",
                                                                              "test"]]


@unchanged
def test_tag_based_task_concurrency() -> None:
    """A tag concurrency limit of 1 on "db": tasks tagged "db" run one at a time."""
    from stead import flow, task

    store_for().set_limit(Limit("db", concurrency=1))  # `prefect concurrency-limit create db 1`
    lock = threading.Lock()
    running, peak = [0], [0]

    @task(tags=["db"])
    def query(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.03)
        with lock:
            running[0] -= 1
        return i

    @flow
    def queries() -> list[int]:
        return query.map(range(4)).result()

    assert queries() == [0, 1, 2, 3]
    assert peak[0] == 1


@unchanged
def test_global_concurrency_context_manager() -> None:
    """`with concurrency("database", occupy=1):` holds a slot of the global limit."""
    from stead import flow, task
    from stead.concurrency.sync import concurrency

    store_for().set_limit(Limit("database", concurrency=1))
    lock = threading.Lock()
    inside, peak = [0], [0]

    @task
    def write(i: int) -> int:
        with concurrency("database", occupy=1):
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.03)
            with lock:
                inside[0] -= 1
        return i

    @flow
    def writes() -> list[int]:
        return write.map(range(3)).result()

    assert writes() == [0, 1, 2]
    assert peak[0] == 1


@unchanged
def test_concurrency_timeout() -> None:
    """A concurrency block that cannot get its slots in timeout_seconds raises TimeoutError."""
    from stead.concurrency.sync import concurrency

    store_for().set_limit(Limit("gpu", concurrency=1))
    with concurrency("gpu", occupy=1), pytest.raises(TimeoutError), \
            concurrency("gpu", occupy=1, timeout_seconds=0.2):
        pass


@unchanged
def test_rate_limit() -> None:
    """rate_limit("api") inside a flow takes one start of a rate limit per call."""
    from stead import flow
    from stead.concurrency.sync import rate_limit

    store_for().set_limit(Limit("api", rate=100, period=1))

    @flow
    def polite() -> int:
        calls = 0
        for _ in range(3):
            rate_limit("api")
            calls += 1
        return calls

    assert polite() == 3


@unchanged
def test_serve(stead_home: Path, tmp_path: Path) -> None:
    """flow.serve(name=..., interval=...): the process runs the flow on its schedule until
    Ctrl-C, and stops serving cleanly."""
    out = tmp_path / "served.txt"
    script = Path(__file__).with_name("served_hello.py")
    log = tmp_path / "serve.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=sink,
                                stderr=subprocess.STDOUT, env=script_env(stead_home),
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and len(out.read_text().splitlines()) >= 2):
            if proc.poll() is not None:
                raise AssertionError(f"serve exited early:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no two scheduled runs:\n{log.read_text()}")
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    lines = out.read_text().splitlines()
    assert all(line.startswith("hello marvin from hello-deployment") for line in lines)
    done = [r for r in store_for().list_runs(RunFilter(deployment="hello-deployment"))
            if r.state == "Completed"]
    assert len(done) >= 2


@differs
def test_task_run_tags() -> None:
    import stead
    from stead import flow, runtime, task

    @task(tags=["db"])
    def query() -> list[str]:
        with stead.tags() as in_effect:
            return sorted(in_effect)

    @flow
    def tagged() -> list[str]:
        return query()

    assert not hasattr(runtime.task_run, "tags")     # Prefect: runtime.task_run.tags
    with stead.tags("nightly"):
        assert tagged() == ["nightly"]               # the run's tag, not the task's "db"


@unchanged
def test_async_concurrency_and_variables() -> None:
    """`async with concurrency(...)` from prefect.concurrency.asyncio; await Variable.aget."""
    import asyncio

    from stead import flow
    from stead.concurrency.asyncio import concurrency
    from stead.variables import Variable

    store_for().set_limit(Limit("llm", concurrency=2))
    inside, peak = [0], [0]

    async def call_model(i: int) -> int:
        async with concurrency("llm", occupy=1):
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
            await asyncio.sleep(0.02)
            inside[0] -= 1
        return i

    @flow
    async def prompts() -> list[int]:
        await Variable.aset("prompt_count", 4, overwrite=True)
        count = await Variable.aget("prompt_count")
        return list(await asyncio.gather(*(call_model(i) for i in range(count))))

    assert asyncio.run(prompts()) == [0, 1, 2, 3]
    assert 1 <= peak[0] <= 2


@differs
def test_artifacts() -> None:
    with pytest.raises(ImportError):
        from stead.artifacts import create_markdown_artifact  # noqa: F401


@differs
def test_pause_flow_run() -> None:
    with pytest.raises(ImportError):
        from stead import pause_flow_run  # noqa: F401


@differs
def test_transactions() -> None:
    with pytest.raises(ImportError):
        from stead.transactions import transaction  # noqa: F401


@differs
def test_emit_event() -> None:
    with pytest.raises(ImportError):
        from stead.events import emit_event  # noqa: F401
