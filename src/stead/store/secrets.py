"""Secrets at rest: SQL both backends share (conventions in store/leases.py), the verbs and
their protocol.

The store only ever holds ciphertext: encrypting and decrypting is `stead/secrets/crypto.py`'s.
The one verb that answers plaintext, `reveal_secret`, exists for remote processes: the server
holds the key and decrypts for them (a remote process never sees the ciphertext or the key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from stead.errors import SecretNotFound
from stead.secrets import crypto
from stead.store.sql import Dialect

DEFAULT_NAMESPACE = "default"


@dataclass(slots=True)
class SecretRecord:
    """A stored secret as listings show it: never its value, nor its ciphertext."""

    namespace: str
    name: str
    created_at: float
    updated_at: float


class SecretStore(Protocol):
    """The secrets part of the store interface, implemented by every backend.

    Example:
        >>> store.set_secret("DB_PASSWORD", "default", crypto.encrypt(...), time.time())
        >>> store.reveal_secret("DB_PASSWORD", "default")
        'hunter2'
    """

    def set_secret(self, name: str, namespace: str, ciphertext: str, now: float) -> None:
        """Store (or replace) a secret's ciphertext; created_at is kept on replace."""
        ...

    def get_secret(self, name: str, namespace: str) -> str | None:
        """The stored ciphertext of a secret, or None. Only where the database is."""
        ...

    def list_secrets(self, namespace: str | None = None) -> list[SecretRecord]:
        """The secrets of `namespace` (None: every namespace), ordered by namespace, name."""
        ...

    def delete_secret(self, name: str, namespace: str) -> bool:
        """Delete a secret; whether it existed."""
        ...

    def rotate_secrets(self, reencrypt: Callable[[str], str], now: float) -> int:
        """Replace every ciphertext by `reencrypt(ciphertext)` in one transaction; how many.
        Only where the database is (a callable does not travel)."""
        ...

    def reveal_secret(self, name: str, namespace: str) -> str:
        """The plaintext of a secret, decrypted with this process's keys (on a server: the
        server's). Raises SecretNotFound, SecretKeyMissing or SecretKeyMismatch."""
        ...


SECRET_COLUMNS = "namespace, name, created_at, updated_at"


def set_secret(conn: Any, d: Dialect, name: str, namespace: str, ciphertext: str,
               now: float) -> None:
    conn.execute(
        "INSERT INTO secrets (namespace, name, ciphertext, created_at, updated_at) VALUES "
        f"({d.marks(5)}) ON CONFLICT (namespace, name) DO UPDATE SET "
        "ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        (namespace, name, ciphertext, now, now))


def get_secret(conn: Any, d: Dialect, name: str, namespace: str) -> str | None:
    row = conn.execute(f"SELECT ciphertext FROM secrets WHERE namespace = {d.p} AND "
                       f"name = {d.p}", (namespace, name)).fetchone()
    return None if row is None else str(row[0])


def list_secrets(conn: Any, d: Dialect, namespace: str | None) -> list[SecretRecord]:
    if namespace is None:
        rows = conn.execute(f"SELECT {SECRET_COLUMNS} FROM secrets ORDER BY namespace, name")
    else:
        rows = conn.execute(f"SELECT {SECRET_COLUMNS} FROM secrets WHERE namespace = {d.p} "
                            "ORDER BY namespace, name", (namespace,))
    return [SecretRecord(*row) for row in rows.fetchall()]


def delete_secret(conn: Any, d: Dialect, name: str, namespace: str) -> bool:
    cur = conn.execute(f"DELETE FROM secrets WHERE namespace = {d.p} AND name = {d.p}",
                       (namespace, name))
    return bool(cur.rowcount)


def rotate_secrets(conn: Any, d: Dialect, reencrypt: Callable[[str], str], now: float) -> int:
    # Locked rows: a `secrets set` meanwhile waits, so no new value is overwritten by an old one.
    rows = conn.execute(f"SELECT namespace, name, ciphertext FROM secrets{d.for_update}"
                        ).fetchall()
    for namespace, name, ciphertext in rows:
        conn.execute(f"UPDATE secrets SET ciphertext = {d.p}, updated_at = {d.p} WHERE "
                     f"namespace = {d.p} AND name = {d.p}",
                     (reencrypt(str(ciphertext)), now, namespace, name))
    return len(rows)


class SecretVerbs:
    """The secret verbs over a backend's `_write`/`_read` (see store/verbs.py)."""

    def _write(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def _read(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def set_secret(self, name: str, namespace: str, ciphertext: str, now: float) -> None:
        self._write(set_secret, name, namespace, ciphertext, now)

    def get_secret(self, name: str, namespace: str) -> str | None:
        return self._read(get_secret, name, namespace)  # type: ignore[no-any-return]

    def list_secrets(self, namespace: str | None = None) -> list[SecretRecord]:
        return self._read(list_secrets, namespace)  # type: ignore[no-any-return]

    def delete_secret(self, name: str, namespace: str) -> bool:
        return self._write(delete_secret, name, namespace)  # type: ignore[no-any-return]

    def rotate_secrets(self, reencrypt: Callable[[str], str], now: float) -> int:
        return self._write(rotate_secrets, reencrypt, now)  # type: ignore[no-any-return]

    def reveal_secret(self, name: str, namespace: str) -> str:
        ciphertext = self.get_secret(name, namespace)
        if ciphertext is None:
            raise SecretNotFound(
                f"no secret {name!r} in namespace {namespace!r}; set it where the database is "
                f"with: stead secrets set {name}"
                + ("" if namespace == DEFAULT_NAMESPACE else f" --namespace {namespace}"))
        return crypto.decrypt(ciphertext, name, namespace)
