"""`stead secrets ...` in real subprocesses: values come from stdin (never an argument),
listings show no values, rotation re-encrypts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stead.core.runtime import store_for

PLAIN = "piped-secret-value-123"


def stead_cli(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stead.cli.main", *args], input=stdin,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200", **env})


def _key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def test_set_reads_stdin_creates_the_key_file_and_ls_shows_no_value(stead_home: Path) -> None:
    done = stead_cli("secrets", "set", "DB_PASSWORD", stdin=PLAIN + "\n")
    assert done.returncode == 0, done.stderr
    key_file = stead_home / "secrets.key"
    assert str(key_file) in done.stderr and "0600" in done.stderr
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert stead_cli("secrets", "set", "API", "--namespace", "etl", stdin="x-y-z").returncode == 0
    listed = stead_cli("secrets", "ls", "-A")
    assert "DB_PASSWORD" in listed.stdout and "etl" in listed.stdout
    assert PLAIN not in listed.stdout + listed.stderr
    assert "API" not in stead_cli("secrets", "ls").stdout  # only the default namespace
    import stead

    assert stead.secret("DB_PASSWORD") == PLAIN  # the trailing newline is not part of it


def test_set_refuses_a_value_given_as_an_argument(stead_home: Path) -> None:
    done = stead_cli("secrets", "set", "DB_PASSWORD", PLAIN, stdin="")
    assert done.returncode == 2
    assert "never taken from the command line" in done.stderr
    assert "printf %s" in done.stderr
    assert not (stead_home / "stead.db").exists() or not store_for().list_secrets(None)


def test_set_refuses_an_empty_value(stead_home: Path) -> None:
    done = stead_cli("secrets", "set", "EMPTY", stdin="")
    assert done.returncode == 2 and "no value given" in done.stderr


def test_rm_deletes_and_says_when_there_is_nothing(stead_home: Path) -> None:
    stead_cli("secrets", "set", "TOKEN", stdin="value-1")
    assert stead_cli("secrets", "rm", "TOKEN").returncode == 0
    missing = stead_cli("secrets", "rm", "TOKEN")
    assert missing.returncode == 2 and "no secret 'TOKEN'" in missing.stderr


def test_rotate_re_encrypts_with_the_first_key(stead_home: Path) -> None:
    old, new = _key(), _key()
    assert stead_cli("secrets", "set", "TOKEN", stdin=PLAIN,
                     STEAD_SECRETS_KEY=old).returncode == 0
    before = store_for().get_secret("TOKEN", "default")
    done = stead_cli("secrets", "rotate", STEAD_SECRETS_KEY=f"{new},{old}")
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 1 secret" in done.stdout
    assert store_for().get_secret("TOKEN", "default") != before
    read = [sys.executable, "-c", "import stead; print(stead.secret('TOKEN'))"]
    env = {**os.environ, "STEAD_SECRETS_KEY": new}
    assert subprocess.run(read, capture_output=True, text=True, env=env,
                          check=True).stdout.strip() == PLAIN
    wrong = stead_cli("secrets", "rotate", STEAD_SECRETS_KEY=_key())
    assert wrong.returncode == 2 and "nothing was changed" in wrong.stderr


def test_setting_through_a_server_url_is_refused(stead_home: Path) -> None:
    done = stead_cli("secrets", "set", "X", "--db", "http://127.0.0.1:9", stdin="v-a-l-u-e")
    assert done.returncode == 2 and "where the database and the key are" in done.stderr


@pytest.mark.parametrize("command", [["secrets", "--help"], ["secrets", "set", "--help"],
                                     ["secrets", "rotate", "--help"]])
def test_help_has_an_example(command: list[str]) -> None:
    assert "Example" in stead_cli(*command).stdout
