"""`stead variables ls/get/set/unset` on every backend (remote mode through a real server
too), and what they print, exit with and leave in the audit log."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stead.core.runtime import store_for
from stead.store.audit import AuditFilter
from stead.store.base import Store
from stead.variables import Variable

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_set_get_ls_unset_on_every_backend(backend: str, invoke: Callable[..., Any],
                                           store: Store) -> None:
    done = invoke("variables", "set", "batch_size", "500", "--tag", "etl")
    assert done.exit_code == 0, done.output
    assert "created variable batch_size in namespace default: 500" in done.output
    invoke("variables", "set", "regions", '["eu-west-1", "us-east-1"]')
    invoke("variables", "set", "region", "eu-west-1")  # not JSON: a string
    invoke("variables", "set", "zip", "00501", "--string")
    # The flows' side sees the types the command line meant.
    assert Variable.get("batch_size") == 500
    assert Variable.get("regions") == ["eu-west-1", "us-east-1"]
    assert Variable.get("region") == "eu-west-1"
    assert Variable.get("zip") == "00501"
    got = invoke("variables", "get", "region")
    assert got.exit_code == 0 and got.output == "eu-west-1\n"
    assert invoke("variables", "get", "region", "--json").output == '"eu-west-1"\n'
    assert invoke("variables", "get", "regions").output == '["eu-west-1", "us-east-1"]\n'
    listed = invoke("variables", "ls")
    assert listed.exit_code == 0
    for text in ("batch_size", "500", "etl", "regions", "eu-west-1"):
        assert text in listed.output
    gone = invoke("variables", "unset", "zip")
    assert gone.exit_code == 0 and "deleted variable zip" in gone.output
    assert Variable.get("zip") is None
    missing = invoke("variables", "unset", "zip")
    assert missing.exit_code == 2 and "no variable 'zip'" in missing.output


def test_overwrite_is_needed_to_replace(invoke: Callable[..., Any]) -> None:
    invoke("variables", "set", "mode", "fast", "--tag", "a")
    refused = invoke("variables", "set", "mode", "slow")
    assert refused.exit_code == 2
    assert "already exists" in refused.output and "--overwrite" in refused.output
    assert Variable.get("mode") == "fast"
    replaced = invoke("variables", "set", "mode", "slow", "--overwrite")
    assert replaced.exit_code == 0 and "replaced variable mode" in replaced.output
    assert Variable.get("mode") == "slow"
    assert Variable.list()[0].tags == ["a"]  # no --tag: the tags stay


def test_values_are_json_when_they_read_as_json(invoke: Callable[..., Any]) -> None:
    cases = {"n": ("42", 42), "f": ("2.5", 2.5), "t": ("true", True), "z": ("null", None),
             "o": ('{"k": [1, "x"]}', {"k": [1, "x"]}), "q": ('"500"', "500"),
             "s": ("hello world", "hello world"), "b": ("[1,", "[1,")}
    for name, (text, _) in cases.items():
        assert invoke("variables", "set", name, text).exit_code == 0
    assert {n: Variable.get(n) for n in cases} == {n: v for n, (_, v) in cases.items()}
    dash = invoke("variables", "set", "neg", "--", "-5")
    assert dash.exit_code == 0 and Variable.get("neg") == -5


def test_a_value_from_stdin(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "stead.cli.main", "variables", "set", "hosts",
                           "-"], input='{"hosts": ["a", "b"]}\n', capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Variable.get("hosts") == {"hosts": ["a", "b"]}


def test_bad_names_and_missing_variables_are_one_clear_line(stead_cli: Cli) -> None:
    bad = stead_cli("variables", "set", "Batch Size", "1")
    assert bad.returncode == 2
    assert "'Batch Size' is not a variable name" in bad.stderr
    assert "lowercase letters" in bad.stderr and "'batch_size'" in bad.stderr
    assert "Traceback" not in bad.stderr
    stead_cli("variables", "set", "x", "1")
    missing = stead_cli("variables", "get", "nope")
    assert missing.returncode == 2 and missing.stdout == ""
    assert "no variable 'nope' in namespace 'default'" in missing.stderr


def test_namespaces_prefix_and_json_listing(invoke: Callable[..., Any]) -> None:
    invoke("variables", "set", "etl_batch", "1")
    invoke("variables", "set", "etl_mode", "fast")
    invoke("variables", "set", "other", "2")
    invoke("variables", "set", "etl_batch", "9", "--namespace", "team-a")
    only = json.loads(invoke("variables", "ls", "--prefix", "etl_", "--json").output)
    assert [(v["namespace"], v["name"], v["value"]) for v in only] == [
        ("default", "etl_batch", 1), ("default", "etl_mode", "fast")]
    every = json.loads(invoke("variables", "ls", "-A", "--json").output)
    assert [(v["namespace"], v["name"]) for v in every][-1] == ("team-a", "etl_batch")
    assert invoke("variables", "get", "etl_batch", "-n", "team-a").output == "9\n"
    assert "No variables" in invoke("variables", "ls", "-n", "empty").output


def test_local_changes_are_audited(invoke: Callable[..., Any], store: Store) -> None:
    invoke("variables", "set", "mode", "fast")
    invoke("variables", "set", "mode", "slow")  # refused: exists
    invoke("variables", "unset", "mode", "-n", "team-a")  # not there
    invoke("variables", "unset", "mode")
    rows = store.list_audit(AuditFilter(action="variables"))  # type: ignore[attr-defined]
    assert [(r.action, r.target, r.outcome, r.method) for r in reversed(rows)] == [
        ("variables set", "mode", 200, "CLI"), ("variables set", "mode", 409, "CLI"),
        ("variables unset", "mode", 404, "CLI"), ("variables unset", "mode", 200, "CLI")]
    assert rows[1].detail == "namespace team-a; not found"
    assert all(r.key_name and r.key_name.startswith("local:") for r in rows)


def test_help_explains_values_with_examples(invoke: Callable[..., Any]) -> None:
    top = invoke("variables", "--help").output
    assert "Variable.get" in top and "stead variables set batch_size 500" in top
    for command in ("ls", "get", "set", "unset"):
        assert "Example" in invoke("variables", command, "--help").output
    help_text = invoke("variables", "set", "--help").output
    assert "--overwrite" in help_text and "--string" in help_text and "JSON" in help_text


@pytest.mark.parametrize("backend", ["http"], indirect=True)
def test_remote_mode_writes_through_the_server(backend: str, stead_cli: Cli, stead_home: Path,
                                               invoke: Callable[..., Any]) -> None:
    """With STEAD_DATABASE_URL naming a server, the commands go through it: the server's
    database holds the variable and the server's audit log has the change."""
    done = invoke("variables", "set", "remote_one", "[1, 2]")
    assert done.exit_code == 0, done.output
    assert stead_cli("variables", "get", "remote_one").stdout == "[1, 2]\n"
    server_db = store_for(f"sqlite:///{stead_home / 'server.db'}")
    assert server_db.get_variable("remote_one", "default").value == [1, 2]  # type: ignore
    deadline = time.monotonic() + 30  # the server writes its audit rows in batches
    while not (rows := server_db.list_audit(  # type: ignore[attr-defined]
            AuditFilter(action="store.set_variable"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(r.target, r.outcome) for r in rows] == [("remote_one", 200)]
