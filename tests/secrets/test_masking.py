"""Secret values never reach what Stead records or shows: step parameters, results, errors,
log lines, a run's parameters, `stead runs show` and the API; and runs whose parameters held
secrets still resume (by reference) or say clearly which value to give again."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

import stead
from stead import flow, get_logger, task
from stead.cli.main import app
from stead.core import masking
from stead.core.runtime import store_for
from stead.errors import SecretUnavailable
from stead.secrets import crypto
from stead.store import open_store
from stead.store.base import Store
from tests.conftest import serve_in_thread
from tests.secrets.conftest import database_bytes

PLAIN = "s3cr3t-Value-with-\"quote\"-and-é"
MASK = masking.MASK
SHOULD_FAIL = {"login": False}


@task
def use(password: str) -> str:
    get_logger().info("connecting with %s", password)
    print(f"printed {password}")
    return f"dsn://app:{password}@db"


@task
def reject(password: str) -> None:
    raise ValueError(f"bad password {password}")


@flow(log_prints=True)
def connect() -> str:
    dsn = use(stead.secret("DB_PASSWORD"))
    try:
        reject(stead.secret("DB_PASSWORD"))
    except ValueError:
        pass
    return dsn


@task
def check(password: SecretStr) -> int:
    return len(password.get_secret_value())


@flow
def login(user: str, password: SecretStr) -> int:
    n = check(password)
    if SHOULD_FAIL["login"]:
        raise RuntimeError("the login service is down")
    return n


@flow
def login_text(user: str, password: SecretStr) -> str:  # called with a plain str
    return user


def _everything_recorded(store: Store, run_id: str) -> str:
    run = store.get_run(run_id)
    steps = store.load_steps(run_id).values()
    logs = store.read_logs(run_id)
    parts = [run.params, run.result or "", run.error or ""]
    for s in steps:
        parts += [s.params or "", s.result or "", s.error or "", s.history]
    parts += [line.message for line in logs]
    return "\n".join(parts)


def _api_url(backend: str, store: Store) -> tuple[str, Callable[[], None]]:
    if backend == "http":
        return os.environ["STEAD_DATABASE_URL"], lambda: None
    return serve_in_thread(store, require_auth=False)


def test_a_revealed_secret_is_masked_in_everything_recorded_and_shown(
        backend: str, stead_home: Path, home_store: Store, put_secret: Callable[..., None],
        capsys: pytest.CaptureFixture[str]) -> None:
    put_secret("DB_PASSWORD", PLAIN)
    run_id = connect.with_options(run_id="masked-run")()
    assert run_id == f"dsn://app:{PLAIN}@db"  # the flow's caller gets the real value
    store = store_for()
    recorded = _everything_recorded(store, "masked-run")
    assert PLAIN not in recorded and json.dumps(PLAIN)[1:-1] not in recorded
    assert f"connecting with {MASK}" in recorded and f"printed {MASK}" in recorded
    assert f"bad password {MASK}" in recorded and f"dsn://app:{MASK}@db" in recorded
    assert PLAIN not in capsys.readouterr().err  # the console echo of log lines too

    for command in (["runs", "show", "masked-run"], ["logs", "masked-run"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output
        assert PLAIN not in result.output and MASK in result.output

    url, stop = _api_url(backend, store)
    try:
        for path in ("", "/steps", "/logs"):
            answer = httpx.get(f"{url}/api/v1/runs/masked-run{path}", timeout=30)
            assert answer.status_code == 200, answer.text
            assert PLAIN not in answer.text and json.dumps(PLAIN)[1:-1] not in answer.text
    finally:
        stop()
    if backend != "postgres":
        home_store.close()
    data = database_bytes(backend, stead_home, home_store)
    assert PLAIN.encode() not in data and json.dumps(PLAIN)[1:-1].encode() not in data


def test_a_secretstr_parameter_is_recorded_masked_and_a_resume_asks_for_it(
        backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SHOULD_FAIL, "login", True)
    with pytest.raises(RuntimeError):
        login.with_options(run_id="login-1")("ann", SecretStr(PLAIN))
    store = store_for()
    recorded = _everything_recorded(store, "login-1")
    assert PLAIN not in recorded and MASK in recorded
    assert json.loads(store.get_run("login-1").params)["password"]["v"] == MASK

    shown = CliRunner().invoke(app, ["runs", "show", "login-1"])
    assert f"password=SecretStr('{MASK}')" in shown.output and PLAIN not in shown.output

    with pytest.raises(SecretUnavailable) as info:
        login.resume("login-1")
    assert "'password'" in str(info.value) and "params=" in str(info.value)
    monkeypatch.setitem(SHOULD_FAIL, "login", False)
    assert login.resume("login-1", params={"password": SecretStr(PLAIN)}) == len(PLAIN)
    assert store.get_run("login-1").state == "Completed"


def test_a_secretstr_from_stead_secret_is_recorded_as_a_reference_and_resumes(
        backend: str, put_secret: Callable[..., None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    put_secret("DB_PASSWORD", PLAIN)
    monkeypatch.setitem(SHOULD_FAIL, "login", True)
    with pytest.raises(RuntimeError):
        login.with_options(run_id="login-2")("ann", SecretStr(stead.secret("DB_PASSWORD")))
    params = json.loads(store_for().get_run("login-2").params)
    assert params["password"] == {"$t": "secret", "k": "SecretStr", "v": MASK,
                                  "ref": ["default", "DB_PASSWORD"]}
    masking._revealed.clear()  # as in a fresh process, which has revealed nothing yet
    masking.PATTERNS.clear()
    monkeypatch.setitem(SHOULD_FAIL, "login", False)
    assert login.resume("login-2") == len(PLAIN)


def test_a_plain_text_argument_of_a_secretstr_parameter_is_masked_too(backend: str) -> None:
    login_text.with_options(run_id="login-3")("ann", PLAIN)  # type: ignore[arg-type]
    assert PLAIN not in store_for().get_run("login-3").params


def test_enqueueing_a_secret_value_that_would_not_be_recorded_is_refused(
        backend: str, put_secret: Callable[..., None]) -> None:
    with pytest.raises(SecretUnavailable, match="'password'"):
        login.enqueue("ann", SecretStr(PLAIN))
    put_secret("DB_PASSWORD", PLAIN)
    run_id = login.enqueue("ann", SecretStr(stead.secret("DB_PASSWORD")))
    assert PLAIN not in store_for().get_run(run_id).params


REMOTE_FLOW = """
import hashlib, sys
import stead
from stead.secrets import crypto

assert crypto.configured_keys() == [], "this process must have no key"

@stead.flow
def remote() -> str:
    return hashlib.sha256(stead.secret("DB_PASSWORD").encode()).hexdigest()

print(remote())
"""


def test_a_remote_flow_gets_its_secret_from_the_server_which_holds_the_key(
        stead_home: Path, tmp_path: Path) -> None:
    server_store = open_store(f"sqlite:///{stead_home / 'server.db'}")
    crypto.ensure_key()
    server_store.set_secret("DB_PASSWORD", "default",
                            crypto.encrypt(PLAIN, "DB_PASSWORD", "default"), 0.0)
    url, stop = serve_in_thread(server_store, require_auth=False)
    try:
        env = {**os.environ, "STEAD_HOME": str(tmp_path / "remote-home"),
               "STEAD_DATABASE_URL": url, "STEAD_CONSOLE": "0",
               "STEAD_SECRETS_KEY_FILE": str(tmp_path / "no-such.key")}
        env.pop("STEAD_SECRETS_KEY", None)
        done = subprocess.run([sys.executable, "-c", REMOTE_FLOW], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == hashlib.sha256(PLAIN.encode()).hexdigest()
    finally:
        stop()
        server_store.close()
