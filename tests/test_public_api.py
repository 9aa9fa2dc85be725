"""The public names of `stead` are pinned, and importing the engine stays light."""

import subprocess
import sys

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
}


def test_public_names_are_pinned() -> None:
    assert set(stead.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(stead, name) is not None


def test_public_callables_are_documented_with_an_example() -> None:
    for name in ("flow", "task", "get_logger", "now", "uuid", "step_idempotency_key",
                 "exponential_backoff", "unmapped", "wait", "as_completed", "StepFuture", "secret",
                 "ThreadPoolTaskRunner"):
        doc = getattr(stead, name).__doc__ or ""
        assert "Example" in doc, f"stead.{name} has no example in its docstring"


def test_importing_stead_loads_no_web_cli_or_migration_code() -> None:
    code = ("import sys, stead; heavy = [m for m in ('fastapi', 'starlette', 'uvicorn', 'typer',"
            " 'rich', 'sqlalchemy', 'alembic', 'pydantic', 'asyncio', 'logging') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    # `site` may pre-import some of these on a given machine; compare against a bare start.
    baseline = subprocess.run(
        [sys.executable, "-c", code.replace("import sys, stead;", "import sys;")],
        capture_output=True, text=True, check=True).stdout.strip()
    added = set(filter(None, out.split(","))) - set(filter(None, baseline.split(",")))
    assert added == set(), f"import stead pulled in {sorted(added)}"
