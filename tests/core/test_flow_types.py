"""Direct flow calls check and convert their arguments by the annotations, as deployments do."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from stead import flow
from stead.deployments.params import typed_parameters
from stead.errors import ParameterError
from stead.store.base import RunFilter
from tests.conftest import script_env


class Region(enum.Enum):
    EU = "eu"
    US = "us"


class Window(BaseModel):
    start: dt.date
    days: int = 1


@dataclasses.dataclass
class Target:
    table: str


def report(day: dt.date, region: Region, limit: int = 10, ratio: float = 0.5,
           window: Window | None = None, tags: list[int] | None = None,
           amount: Decimal = Decimal(0), target: Target | None = None,
           anything: Any = None, free=None) -> dict[str, Any]:
    return {"day": day, "region": region, "limit": limit, "ratio": ratio, "window": window,
            "tags": tags, "amount": amount, "target": target, "anything": anything,
            "free": free}


report_flow = flow(report)

CALLS: list[dict[str, Any]] = [
    {"day": "2026-11-21", "region": "eu"},
    {"day": dt.date(2026, 11, 21), "region": Region.US, "limit": "5", "ratio": 2},
    {"day": "2026-11-21", "region": "eu", "window": {"start": "2026-11-01", "days": "3"}},
    {"day": "2026-11-21", "region": "eu", "tags": ["1", 2], "amount": "1.50"},
    {"day": "2026-11-21", "region": "eu", "target": Target("orders"), "anything": {1, 2}},
    {"day": "2026-11-21", "region": "eu", "free": {"not": "checked"}},
    {"day": "tomorrow", "region": "eu"},
    {"day": "2026-11-21", "region": "asia"},
    {"day": "2026-11-21", "region": "eu", "limit": "many"},
    {"day": "2026-11-21", "region": "eu", "tags": [1, "x"]},
    {"day": "2026-11-21", "region": "eu", "window": {"days": 2}},
    {"day": "2026-11-21", "region": "eu", "limit": True},
]


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except ParameterError as exc:
        return "error", str(exc).split(": parameter ", 1)[1].split("'")[1]  # the parameter


@pytest.mark.parametrize("params", CALLS, ids=range(len(CALLS)))
def test_a_direct_call_gets_what_a_deployment_gets(store, params: dict[str, Any]) -> None:
    direct = outcome(lambda: report_flow(**params))
    deployed = outcome(lambda: report(**typed_parameters(report, params)))
    assert direct == deployed
    assert len(store.list_runs(RunFilter())) == (1 if direct[0] == "ok" else 0)


def test_the_error_names_the_parameter_the_type_and_the_value(store) -> None:
    with pytest.raises(ParameterError) as caught:
        report_flow("2026-11-21", "eu", tags=[1, "x"])
    assert str(caught.value).startswith(
        "flow 'report': parameter 'tags.1' expects list[int] | None, got [1, 'x'] (list): ")
    with pytest.raises(ParameterError, match=r"parameter 'day' expects date, got 'tomorrow' "
                                             r"\(str\): Input should be a valid date"):
        report_flow("tomorrow", Region.EU)
    assert store.list_runs(RunFilter()) == []


def test_converted_values_are_the_ones_recorded_and_returned(store) -> None:
    result = report_flow("2026-11-21", "eu", limit="5")
    assert result["day"] == dt.date(2026, 11, 21) and result["region"] is Region.EU
    assert result["limit"] == 5
    [run] = store.list_runs(RunFilter())
    assert '"$t":"date"' in run.params and '"limit":5' in run.params


def test_arguments_of_the_right_type_are_passed_as_they_are(store) -> None:
    target, tags = Target("orders"), [1, 2]
    window = Window(start=dt.date(2026, 11, 1))

    @flow
    def same(target: Target, window: Window, tags: list[int], *rest: int) -> bool:
        return target is target_in and window is window_in and rest == ("not", "checked")

    target_in, window_in = target, window
    assert same(target, window, tags, "not", "checked")


def test_right_typed_calls_do_not_import_pydantic(stead_home, tmp_path) -> None:
    script = tmp_path / "plain.py"
    script.write_text(
        "import datetime as dt, sys\n"
        "from stead import flow\n"
        "@flow\n"
        "def plain(day: dt.date, n: int, name: str = 'x', ratio: float = 1.0) -> int:\n"
        "    return n\n"
        "assert plain(dt.date(2026, 11, 21), 3, 'y', 0.5) == 3\n"
        "print('pydantic' in sys.modules)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env=script_env(stead_home, STEAD_CONSOLE="0"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_enqueue_checks_and_converts_like_a_direct_call(store) -> None:
    run_id = report_flow.enqueue("2026-11-21", "eu", limit="5", queue="reports")
    run = store.get_run(run_id)
    assert '"$t":"date"' in run.params and '"limit":5' in run.params
    with pytest.raises(ParameterError, match=r"parameter 'region' expects Region"):
        report_flow.enqueue("2026-11-21", "asia", queue="reports")
    assert [r.id for r in store.list_runs(RunFilter())] == [run_id]
