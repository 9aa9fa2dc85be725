"""Schema migrations through Alembic, imported only when a database's schema must change.

Opening an up-to-date database costs one SELECT of its revision; Alembic and SQLAlchemy
(~150 ms to import) load only to create or upgrade a schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stead.errors import StoreError

SCHEMA_HEAD = "0012"  # newest revision in migrations/versions; a test pins it to Alembic's head
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}


def script_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def upgrade_to(sqlalchemy_url: str, revision: str) -> None:
    """Migrate the schema at `sqlalchemy_url` to `revision` (tests of upgrade paths)."""
    import sqlalchemy
    from alembic import command

    cfg = _config()
    engine = sqlalchemy.create_engine(sqlalchemy_url)
    try:
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def upgrade(sqlalchemy_url: str, current: str | None, where: str) -> None:
    """Bring the schema at `sqlalchemy_url` from revision `current` to SCHEMA_HEAD."""
    if current is not None and current not in known_revisions():
        raise StoreError(
            f"{where} has schema revision {current!r}, which this Stead does not know: it was "
            "written by a newer Stead. Upgrade Stead (pip install -U stead) to use it."
        )
    upgrade_to(sqlalchemy_url, "head")
