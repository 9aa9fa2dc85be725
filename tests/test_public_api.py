"""The public names of `stead` are pinned, and importing the engine stays light."""

import subprocess
import sys

import pytest

import stead

EXPECTED = {
    "ConfigError", "FakeClock", "Flow", "FlowRunFailed", "NonDeterminismError",
    "ParameterError", "RunConflict", "RunNotFound", "SerializationError", "State",
    "SteadError", "StoreError", "SystemClock", "Task", "TaskTimeout", "exponential_backoff",
    "flow", "get_logger", "in_flow", "now", "step_idempotency_key", "task", "uuid",
    "ProcessPoolTaskRunner", "StepFuture", "TaskRunner", "ThreadPoolTaskRunner",
    "UpstreamFailed", "as_completed", "unmapped", "wait",
    "INPUTS", "TASK_SOURCE", "CacheKeyFn", "CachePolicy", "Inputs",
    "secret",
    "RunHandle", "get_run", "FlowRunStopped",
    "StepFutureList",
    "get_run_logger",
    "tags",
    "Variable",
    "serve", "concurrency", "ConcurrencyTimeout",
    "allow_failure",
    # durable waits and messages (issue 18)
    "sleep", "receive", "wait_for_input", "set_status", "Message",
    "send", "send_input", "get_status", "request",
    "WaitError", "InvalidInput", "WaitTimeout", "RequestRejected",
}


def test_public_names_are_pinned() -> None:
    assert set(stead.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(stead, name) is not None
    assert set(dir(stead)) >= EXPECTED


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'flwo'"):
        stead.flwo  # noqa: B018
    with pytest.raises(ImportError):
        exec("from stead import flwo")


def test_import_stead_alone_loads_no_engine_module() -> None:
    """The names load on first use: the CLI, the server and a worker's store modules import
    `stead.<module>` without paying for the engine; `from stead import flow` loads it."""
    code = ("import sys, stead, stead.errors; print(sorted(m for m in sys.modules "
            "if m.startswith('stead.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "['stead.errors']"
    code = "import sys; from stead import flow; print('stead.core.execution' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


def test_public_callables_are_documented_with_an_example() -> None:
    for name in ("flow", "task", "get_logger", "now", "uuid", "step_idempotency_key",
                 "exponential_backoff", "unmapped", "wait", "as_completed", "StepFuture", "secret",
                 "StepFutureList",
                 "ThreadPoolTaskRunner", "RunHandle", "get_run", "get_run_logger",
                 "Variable", "tags", "serve",
                 "concurrency"):
        doc = getattr(stead, name).__doc__ or ""
        assert "Example" in doc, f"stead.{name} has no example in its docstring"


def test_importing_stead_loads_no_web_cli_or_migration_code() -> None:
    # The engine itself, not just the package: `import stead` alone loads nothing.
    engine = "import stead; from stead import flow, task, get_run;"
    code = ("import sys; ENGINE heavy = [m for m in ('fastapi', 'starlette', 'uvicorn', 'typer',"
            " 'rich', 'sqlalchemy', 'alembic', 'pydantic', 'asyncio', 'logging') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code.replace("ENGINE", engine)],
                         capture_output=True, text=True, check=True).stdout.strip()
    # `site` may pre-import some of these on a given machine; compare against a bare start.
    baseline = subprocess.run([sys.executable, "-c", code.replace("ENGINE", "")],
                              capture_output=True, text=True, check=True).stdout.strip()
    added = set(filter(None, out.split(","))) - set(filter(None, baseline.split(",")))
    assert added == set(), f"import stead pulled in {sorted(added)}"


def test_prefects_module_names_are_attributes_of_stead() -> None:
    """`import stead` then `stead.runtime.flow_run.id`, as Prefect users write it."""
    code = ("import stead\n"
            "assert stead.runtime.flow_run.id is None\n"
            "assert stead.states.Completed(data=1).result() == 1\n"
            "assert callable(stead.futures.wait) and stead.task_runners.ThreadPoolTaskRunner\n"
            "assert stead.cache_policies.INPUTS is stead.INPUTS\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.stdout.strip() == "ok", out.stderr
