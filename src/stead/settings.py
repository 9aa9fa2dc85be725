"""Every setting Stead reads: its default, its environment variable, and what it means.

Plain dataclass rather than pydantic-settings: `import stead` must stay cheap
(pydantic adds ~80 ms at import), and these few fields need no validation library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stead.errors import ConfigError


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or (minimum is not None and value < minimum):
        at_least = "" if minimum is None else f" >= {minimum}"
        raise ConfigError(f"{name}={raw!r} is not a whole number{at_least}; unset it or give "
                          f"e.g. {default}")
    return value


# STEAD_SQLITE_SYNCHRONOUS, superseded by STEAD_DURABILITY, still means what it meant.
_SYNCHRONOUS_LEVELS = {"FULL": "fsync", "EXTRA": "fsync", "NORMAL": "process"}


def _env_durability() -> str:
    from stead.store.durability import check_level

    level = _env("STEAD_DURABILITY", "")
    sync = _env("STEAD_SQLITE_SYNCHRONOUS", "").upper()
    if sync:
        implied = _SYNCHRONOUS_LEVELS.get(sync)
        if implied is None:
            raise ConfigError(
                f"STEAD_SQLITE_SYNCHRONOUS={sync!r} is not supported: it is superseded by "
                "STEAD_DURABILITY=fsync|process|batched (FULL is fsync, NORMAL is process; "
                "OFF could corrupt the database on a power cut)")
        if level and level != implied:
            raise ConfigError(
                f"STEAD_SQLITE_SYNCHRONOUS={sync} means STEAD_DURABILITY={implied}, but "
                f"STEAD_DURABILITY={level}; unset STEAD_SQLITE_SYNCHRONOUS (superseded)")
        level = level or implied
    return check_level(level or "process", "STEAD_DURABILITY")


def _env_float(name: str, default: float, unit: str = "seconds") -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} is not a number of {unit} > 0; unset it or give "
                          f"e.g. {default:g}")
    return value


def _env_days(name: str, default: float = 0.0) -> float:
    raw = _env(name, f"{default:g}")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        unset = "keep forever" if default == 0 else f"{default:g} days"
        raise ConfigError(f"{name}={raw!r} is not a number of days >= 0; unset it ({unset}) "
                          "or give e.g. 30 (0 keeps forever)")
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a yes/no value; use 1 or 0")


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _env(name, default).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}; unset it "
                          f"({default}) or give one of those")
    return raw


@dataclass(frozen=True, slots=True)
class Settings:
    # STEAD_HOME: folder for the default database and large results (default ~/.stead).
    home: Path
    # STEAD_DATABASE_URL: where runs are recorded (default $STEAD_HOME/stead.db):
    # sqlite:///relative/to/cwd.db, sqlite:////absolute/path.db, a file path, postgresql://...
    database_url: str
    # STEAD_RESULTS_DIR: where results larger than result_inline_max go (default: a `results`
    # folder beside the SQLite database file, so a database and its results move together).
    results_dir: Path | None
    # STEAD_RESULT_INLINE_MAX: results up to this many bytes are stored in the database row.
    result_inline_max: int = 64 * 1024
    # STEAD_DURABILITY: what a run's checkpoints survive unless its flow says: fsync (power
    # loss), process (a killed process; the default) or batched (a crash re-runs <= one group).
    durability: str = "process"
    # STEAD_BATCH_STEPS, STEAD_BATCH_MS: a batched run commits its sequential steps in groups of
    # this many, or once the oldest uncommitted one is this many milliseconds old.
    batch_steps: int = 128
    batch_ms: float = 5.0
    # STEAD_CONSOLE: print a line per state change to stderr (1) or stay silent (0).
    console: bool = True
    # STEAD_CONSOLE_TASKS: also print a line when each task completes (failures always print).
    console_tasks: bool = False
    # STEAD_COLOR: colour states in tables and console lines: auto (on a terminal, unless
    # NO_COLOR is set), always, or never.
    color: str = "auto"
    # STEAD_LOG_LEVEL: lowest level of run-logger lines that are recorded and shown.
    log_level: str = "INFO"
    # STEAD_LOGGERS: comma-separated standard-library loggers (e.g. "mylib,urllib3") whose
    # lines emitted inside a run are recorded in its log (per flow: @flow(log_loggers=[...])).
    log_loggers: tuple[str, ...] = ()
    # STEAD_PARAM_MAX: recorded task parameters larger than this are stored as a short repr.
    param_max: int = 16 * 1024
    # STEAD_SLOW_STEP_MS: a task still running after this long gets a visible Running row.
    slow_step_ms: int = 500
    # STEAD_UNCOMMITTED_STEPS: at most this many submitted tasks of a run may be started and
    # not yet committed (never fewer than the runner's workers). A crash may run them again;
    # a larger window lets group commit batch more (1000 trivial tasks/s: ~8k at 12, ~10k at 64).
    uncommitted_steps: int = 64
    # STEAD_LEASE_SECONDS: a worker's claim on a run (and a task's slot of a tag limit) lasts
    # this long without a heartbeat; a run whose executor stops is recovered within ~2x.
    lease_seconds: float = 30.0
    # STEAD_STORE_RETRY_SECONDS: how long a PostgreSQL or remote store keeps retrying a verb
    # while its server cannot be reached, before raising StoreError.
    store_retry_seconds: float = 60.0
    # STEAD_CLI_WAIT_SECONDS: how long a short `stead` command (ls, show, db status, ...) waits
    # for an unreachable PostgreSQL server as it opens the database (services wait 30 s).
    cli_wait_seconds: float = 3.0
    # STEAD_MAX_RECOVERIES: an enqueued run whose executor was lost is requeued at most this
    # many times (0: never; it stays Crashed for a person to look at).
    max_recoveries: int = 3
    # STEAD_RETENTION_DAYS: finished runs (with steps, logs, result files) older than this many
    # days are pruned by the server (0: keep forever; `stead runs prune` prunes by hand).
    retention_days: float = 0.0
    # STEAD_AUDIT_RETENTION_DAYS: audit log rows older than this many days are deleted by the
    # server's retention service and `stead runs prune` (0: keep forever).
    audit_retention_days: float = 90.0
    # STEAD_AUDIT_EXECUTION: also audit the execution verbs of workers (record_step, heartbeat,
    # claim_runs, ...) that succeed; by default only their refusals and failures are recorded.
    audit_execution: bool = False
    # STEAD_SERVER_HOST: the address `stead server start` listens on (not loopback: keys needed).
    server_host: str = "127.0.0.1"
    # STEAD_SERVER_PORT: the port `stead server start` listens on.
    server_port: int = 4300
    # STEAD_API_KEY: the key a remote process (STEAD_DATABASE_URL=https://server) sends.
    api_key: str | None = None
    # STEAD_NAMESPACE: the namespace (tenant) of the runs and deployments this process creates;
    # an API key may touch only its own namespaces (server/policy.py).
    namespace: str = "default"
    # STEAD_SECRETS_KEY: Fernet key(s) of `stead secrets`, comma-separated: the first encrypts,
    # all decrypt (rotation). Unset: the key file below. Held where the database is, not remotely.
    secrets_key: str | None = None
    # STEAD_SECRETS_KEY_FILE: the key file used when STEAD_SECRETS_KEY is unset (default
    # $STEAD_HOME/secrets.key; one key a line, the first encrypts); `stead secrets set`
    # creates it (mode 0600) when no key exists.
    secrets_key_file: Path = Path("~/.stead/secrets.key")
    # STEAD_ALLOWED_HOSTS: comma-separated host names the server answers to besides its own
    # address (and loopback names on loopback); "*" any. Others get 421 (DNS rebinding).
    allowed_hosts: tuple[str, ...] = ()
    # STEAD_TASKS_OUTSIDE_FLOWS: a task called outside any flow is recorded as a standalone
    # task run with its retries, timeout and cache ("record"), or is a plain call ("plain").
    tasks_outside_flows: str = "record"
    # STEAD_PARK_AFTER_SECONDS: a run executing on a worker that must wait longer than this
    # (a durable sleep, a message, input, a child run, a retry delay) is parked: Paused with no
    # process, woken by the store when its wait is over. Shorter waits wait in place.
    park_after_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("STEAD_HOME", str(Path.home() / ".stead"))).expanduser()
        return cls(
            home=home,
            database_url=_env("STEAD_DATABASE_URL", f"sqlite:///{home / 'stead.db'}"),
            results_dir=(Path(os.environ["STEAD_RESULTS_DIR"]).expanduser()
                         if os.environ.get("STEAD_RESULTS_DIR") else None),
            result_inline_max=_env_int("STEAD_RESULT_INLINE_MAX", 64 * 1024),
            durability=_env_durability(),
            batch_steps=_env_int("STEAD_BATCH_STEPS", 128, minimum=1),
            batch_ms=_env_float("STEAD_BATCH_MS", 5.0, "milliseconds"),
            console=_env_bool("STEAD_CONSOLE", True),
            console_tasks=_env_bool("STEAD_CONSOLE_TASKS", False),
            color=_env_choice("STEAD_COLOR", "auto", ("auto", "always", "never")),
            log_level=_env("STEAD_LOG_LEVEL", "INFO").upper(),
            log_loggers=tuple(n.strip() for n in _env("STEAD_LOGGERS", "").split(",")
                              if n.strip()),
            param_max=_env_int("STEAD_PARAM_MAX", 16 * 1024),
            slow_step_ms=_env_int("STEAD_SLOW_STEP_MS", 500),
            uncommitted_steps=_env_int("STEAD_UNCOMMITTED_STEPS", 64),
            lease_seconds=_env_float("STEAD_LEASE_SECONDS", 30.0),
            store_retry_seconds=_env_float("STEAD_STORE_RETRY_SECONDS", 60.0),
            cli_wait_seconds=_env_float("STEAD_CLI_WAIT_SECONDS", 3.0),
            max_recoveries=_env_int("STEAD_MAX_RECOVERIES", 3),
            retention_days=_env_days("STEAD_RETENTION_DAYS"),
            audit_retention_days=_env_days("STEAD_AUDIT_RETENTION_DAYS", 90.0),
            audit_execution=_env_bool("STEAD_AUDIT_EXECUTION", False),
            server_host=_env("STEAD_SERVER_HOST", "127.0.0.1"),
            server_port=_env_int("STEAD_SERVER_PORT", 4300),
            api_key=os.environ.get("STEAD_API_KEY") or None,
            namespace=_env("STEAD_NAMESPACE", "default"),
            secrets_key=os.environ.get("STEAD_SECRETS_KEY") or None,
            secrets_key_file=Path(_env("STEAD_SECRETS_KEY_FILE",
                                       str(home / "secrets.key"))).expanduser(),
            allowed_hosts=tuple(h.strip() for h in _env("STEAD_ALLOWED_HOSTS", "").split(",")
                                if h.strip()),
            tasks_outside_flows=_env_choice("STEAD_TASKS_OUTSIDE_FLOWS", "record",
                                            ("record", "plain")),
            park_after_seconds=_env_float("STEAD_PARK_AFTER_SECONDS", 5.0),
        )


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def reset_settings() -> None:
    """Forget cached settings so the next use re-reads the environment (tests, CLI options)."""
    global _current
    _current = None
