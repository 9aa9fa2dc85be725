"""Database URLs: which backend a URL names and where its data is, by one convention.

SQLite URLs follow SQLAlchemy's: ``sqlite:///data/x.db`` (three slashes) is relative to the
current directory, ``sqlite:////srv/stead/x.db`` (four) is absolute; ``~`` is expanded. A
plain path (``data/x.db``, ``/srv/x.db``) means the same file. An in-memory SQLite database
(``sqlite://``, ``sqlite:///:memory:``) is refused: runs must outlive the process that
recorded them to be shown or resumed, and Stead's processes each need to open the same file.
"""

from __future__ import annotations

import os.path
from dataclasses import dataclass
from pathlib import Path

from stead.errors import ConfigError

SQLITE_FORMS = ("use sqlite:///RELATIVE/PATH.db (relative to the current directory), "
                "sqlite:////ABSOLUTE/PATH.db, or a plain file path")
POSTGRES_SCHEMES = ("postgresql", "postgres")
HTTP_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A parsed database URL: `kind` is "sqlite", "postgresql" or "http"; `path` is the
    SQLite file, absolute; `url` is the URL to open (for SQLite, always absolute)."""

    kind: str
    url: str
    path: Path | None = None

    def describe(self) -> str:
        """What a person needs to find the data: ``sqlite /abs/x.db``,
        ``postgresql user@host:5432/db`` (no password) or ``server https://host:4300``."""
        if self.path is not None:
            return f"sqlite {self.path}"
        if self.kind == "postgresql":
            return f"postgresql {redacted(self.url).split('://', 1)[1]}"
        return f"server {self.url}"


def parse_database_url(url: str, cwd: Path | None = None) -> DatabaseUrl:
    """Parse `url` by Stead's convention (see the module docstring); a relative SQLite path
    is resolved against `cwd` (default: the current directory) once, here.

    >>> parse_database_url("sqlite:///data/x.db", cwd=Path("/home/me")).path
    PosixPath('/home/me/data/x.db')
    >>> parse_database_url("sqlite:////srv/x.db").url
    'sqlite:////srv/x.db'
    """
    text = url.strip()
    if not text:
        raise ConfigError("the database URL is empty; " + SQLITE_FORMS +
                          ", or postgresql://USER@HOST:PORT/DBNAME")
    scheme, sep, rest = text.partition("://")
    if not sep:
        if text.lower().startswith("sqlite:"):
            raise ConfigError(f"{url!r} is not an SQLite URL Stead reads: {SQLITE_FORMS}")
        return _sqlite(text, url, cwd)
    scheme = scheme.lower()
    if scheme == "sqlite":
        if rest == "" or rest in ("/", "/:memory:") or rest.startswith("/:memory:"):
            raise ConfigError(
                f"{url!r} is an in-memory SQLite database, which Stead cannot use: runs must "
                "outlive the process to be shown or resumed. " + SQLITE_FORMS[0].upper() +
                SQLITE_FORMS[1:])
        if not rest.startswith("/"):
            raise ConfigError(f"{url!r} names a host; SQLite URLs have none: {SQLITE_FORMS}")
        if "?" in rest:
            raise ConfigError(f"{url!r} has query options, which Stead does not read for "
                              f"SQLite: {SQLITE_FORMS}")
        return _sqlite(rest[1:], url, cwd)
    if scheme in POSTGRES_SCHEMES:
        return DatabaseUrl("postgresql", text)
    if scheme in HTTP_SCHEMES:
        return DatabaseUrl("http", text)
    raise ConfigError(
        f"database URL scheme {scheme!r} is not supported; use sqlite:///PATH, "
        f"postgresql://USER@HOST:PORT/DBNAME or a server's http(s)://HOST:PORT (got {url!r})")


def _sqlite(path_text: str, url: str, cwd: Path | None) -> DatabaseUrl:
    if path_text in ("", ":memory:"):
        raise ConfigError(f"{url!r} is an in-memory SQLite database, which Stead cannot use: "
                          f"runs must outlive the process. {SQLITE_FORMS}")
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    path = Path(os.path.normpath(path))  # no . or .. parts; symlinks stay the user's names
    return DatabaseUrl("sqlite", f"sqlite:///{path}", path)


def redacted(url: str) -> str:
    """The URL without its password, for messages.

    >>> redacted("postgresql://app:s3cret@db:5432/stead")
    'postgresql://app@db:5432/stead'
    """
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
