"""`stead deploy`, `stead deployments ls|show|run|pause|resume`, `stead scheduler start --once`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stead.core.runtime import store_for
from stead.store.base import RunFilter
from tests.conftest import SCRIPTS, script_env

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


def test_deploy_then_list_show_and_run(invoke) -> None:
    args = ("deploy", "deployed_flows:report", "--name", "daily", "--queue", "etl", "--param",
            "region=us", "--param", "day=2026-01-01", "--cron", "0 2 * * *", "--tz",
            "Europe/Berlin")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "deployed: daily version 1" in result.stdout
    again = invoke(*args)
    assert "unchanged: daily version 1" in again.stdout
    listing = invoke("deployments", "ls").stdout
    assert "daily" in listing and "Europe/Berlin" in listing
    shown = invoke("deployments", "show", "daily").stdout
    assert "deployed_flows:report" in shown and "day, region, limit, window" in shown
    assert "next run" in shown  # runs are created a minute ahead: show says when
    run = invoke("deployments", "run", "daily", "--param", "day=2026-11-21", "--param",
                 "limit=3", "--run-id", "by-hand")
    assert run.exit_code == 0 and "run by-hand of daily v1 is Pending" in run.stdout
    assert invoke("deployments", "run", "daily", "--param", "day=2026-11-21",
                  "--param", "limit=3", "--run-id", "by-hand").stdout.startswith(
                      "run by-hand exists already")
    stored = store_for().get_run("by-hand")
    assert json.loads(stored.params) == {"day": "2026-11-21", "region": "us", "limit": 3}


@pytest.mark.parametrize(("args", "message"), [
    (["--param", "day=someday"], "parameter 'day'"),
    (["--param", "limit=lots", "--param", "day=2026-11-21"], "parameter 'limit'"),
    (["--param", "oops"], "NAME=VALUE"),
    ([], "parameter 'day' is required"),
])
def test_deployments_run_names_the_bad_parameter(invoke, args: list[str], message: str) -> None:
    invoke("deploy", "deployed_flows:report", "--name", "daily")
    result = invoke("deployments", "run", "daily", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert store_for().list_runs(RunFilter()) == []


def test_errors_name_the_problem(invoke) -> None:
    store_for()  # the database exists, the deployment does not
    missing = invoke("deployments", "run", "nope")
    assert missing.exit_code == 2 and "no deployment 'nope'" in missing.stderr
    bad_entry = invoke("deploy", "deployed_flows", "--name", "x")
    assert bad_entry.exit_code == 2 and "FILE.py:FUNCTION" in bad_entry.stderr
    bad_cron = invoke("deploy", "deployed_flows:tidy", "--name", "x", "--cron", "61 * * * *")
    assert bad_cron.exit_code == 2 and "cron" in bad_cron.stderr.lower()
    bad_policy = invoke("deploy", "deployed_flows:tidy", "--name", "x", "--missed", "some")
    assert bad_policy.exit_code == 2 and "missed" in bad_policy.stderr


def test_pause_resume_and_one_scheduler_round(invoke) -> None:
    invoke("deploy", "deployed_flows:tidy", "--name", "often", "--interval", "60")
    assert "1 schedule(s) now paused" in invoke("deployments", "pause", "often").stdout
    assert "created 0 runs" in invoke("scheduler", "start", "--once", "--ahead", "600").stdout
    assert "(paused)" in invoke("deployments", "ls").stdout
    invoke("deployments", "resume", "often")
    # The next 3 fire times: a short horizon, whatever --ahead allows.
    assert "created 3 runs" in invoke("scheduler", "start", "--once", "--ahead", "600").stdout
    assert "created 0 runs" in invoke("scheduler", "start", "--once", "--ahead", "600").stdout


def test_deploy_a_script_by_path_in_a_real_process(stead_home) -> None:
    script = SCRIPTS / "deployed_flows.py"
    out = subprocess.run([sys.executable, "-m", "stead.cli.main", "deploy", f"{script}:tidy",
                          "--name", "tidy"], capture_output=True, text=True, timeout=60,
                         env=script_env(stead_home))
    assert out.returncode == 0, out.stderr
    dep = store_for().get_deployment("tidy")
    assert dep.script_path == str(script) and dep.entrypoint == "__main__:tidy"


def test_runs_ls_hides_upcoming_scheduled_runs_and_says_how_many(invoke) -> None:
    invoke("deploy", "deployed_flows:tidy", "--name", "often", "--interval", "60")
    invoke("deployments", "run", "often", "--run-id", "by-hand")
    assert "created 3 runs" in invoke("scheduler", "start", "--once", "--ahead", "600").stdout
    listing = invoke("runs", "ls").stdout
    assert "by-hand" in listing and "often@" not in listing
    assert "3 upcoming scheduled run(s) hidden" in listing and "--upcoming" in listing
    shown = invoke("runs", "ls", "--upcoming").stdout
    assert shown.count("often@") == 3 and "hidden" not in shown
    only = invoke("runs", "ls", "--state", "Scheduled").stdout
    assert "No runs matching the filters" in only and "3 upcoming" in only


def test_pause_says_what_it_removed_and_what_still_waits(invoke) -> None:
    invoke("deploy", "deployed_flows:tidy", "--name", "often", "--interval", "60")
    invoke("scheduler", "start", "--once", "--ahead", "600")
    paused = invoke("deployments", "pause", "often").stdout
    assert "1 schedule(s) now paused; 3 scheduled run(s) that had not started removed" in paused
    assert store_for().list_runs(RunFilter()) == []
    resumed = invoke("deployments", "resume", "often").stdout
    assert "now active" in resumed and "not run" in resumed


def test_scheduler_options_have_help_and_bad_periods_are_refused(invoke) -> None:
    shown = invoke("scheduler", "start", "--help").stdout
    for words in ("Seconds between two rounds", "before their fire time", "marked Late",
                  "missed-run policy skip"):
        assert words in " ".join(shown.split()), words
    bad = invoke("scheduler", "start", "--once", "--every", "120", "--ahead", "60")
    assert bad.exit_code == 2 and "--ahead at least --every" in " ".join(bad.stderr.split())
