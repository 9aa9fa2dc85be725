"""`stead.secret("NAME")`: a stored secret's value, inside flows and tasks (or anywhere)."""

from __future__ import annotations

from stead.core import masking
from stead.core.context import current_run
from stead.core.runtime import store_for

DEFAULT_NAMESPACE = "default"


def secret(name: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The value of the secret `name` in `namespace`, set with `stead secrets set NAME`.

    Read through the run's store (else STEAD_DATABASE_URL's): decrypted here with
    STEAD_SECRETS_KEY (or its key file) when the database is local, by the server when the
    process is remote (the server holds the key). Nothing is recorded: it is not a step, and
    from now on this process masks the value ("**********") in recorded parameters, results,
    errors and log lines. Raises SecretNotFound (with the command that sets it),
    SecretKeyMissing or SecretKeyMismatch.

    Example:
        >>> from stead import flow, secret
        >>> @flow
        ... def sync() -> None:
        ...     connect(password=secret("DB_PASSWORD"))
    """
    ctx = current_run.get()
    store = ctx.store if ctx is not None else store_for()
    value: str = store.reveal_secret(name, namespace)
    masking.remember(value, name, namespace)
    return value
