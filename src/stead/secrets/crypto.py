"""Encrypting secrets at rest with Fernet, under keys from STEAD_SECRETS_KEY or a key file.

Why Fernet (cryptography's `Fernet`/`MultiFernet`) rather than raw AES-GCM: it is
authenticated encryption (AES-128-CBC + HMAC-SHA256) in a standard, versioned token with no
nonce for us to manage, and `MultiFernet` is key rotation as specified here (the first key
encrypts, every key decrypts, `rotate()` re-encrypts). AES-GCM is faster, but secrets are few
and small and read once per process: misuse resistance and rotation matter more than speed.

A token's plaintext carries its namespace and name as well as the value, so a ciphertext
copied onto another secret's row by someone with write access to the database is refused
(Fernet has no associated data to bind them otherwise).

`cryptography` is imported on first use: `import stead` must stay cheap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from stead.errors import ConfigError, SecretKeyMismatch, SecretKeyMissing
from stead.settings import get_settings

ROTATE_HINT = ("if the key was changed, put the new key first and the old one after it "
               "(STEAD_SECRETS_KEY=NEW,OLD, or one key a line in the key file), then run "
               "`stead secrets rotate`")
_cache: dict[tuple[str, ...], Any] = {}


def configured_keys() -> list[str]:
    """The configured keys, first (encrypting) first: STEAD_SECRETS_KEY's comma-separated
    list, else the lines of the key file; [] when neither holds a key."""
    settings = get_settings()
    if settings.secrets_key:
        return [k.strip() for k in settings.secrets_key.split(",") if k.strip()]
    try:
        text = settings.secrets_key_file.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read the secrets key file {settings.secrets_key_file}: "
                          f"{exc}") from None
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def key_source() -> str:
    """Where the keys come from, for messages."""
    settings = get_settings()
    return ("STEAD_SECRETS_KEY" if settings.secrets_key
            else f"the key file {settings.secrets_key_file} (STEAD_SECRETS_KEY_FILE)")


def ensure_key() -> Path | None:
    """Create the key file with a new key (mode 0600) unless a key is configured; the path
    of the file made, or None when a key existed already."""
    if configured_keys():
        return None
    from cryptography.fernet import Fernet

    path = get_settings().secrets_key_file
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # even if the file existed (empty) with looser permissions
        os.write(fd, Fernet.generate_key() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _keyring() -> Any:
    keys = tuple(configured_keys())
    if not keys:
        raise SecretKeyMissing(
            "no key for secrets is configured: set STEAD_SECRETS_KEY (a Fernet key; several, "
            f"comma-separated, for rotation) or create {get_settings().secrets_key_file} "
            "(`stead secrets set NAME` creates it). In remote mode the server holds the key.")
    ring = _cache.get(keys)
    if ring is None:
        from cryptography.fernet import Fernet, MultiFernet

        fernets = []
        for i, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise ConfigError(
                    f"key {i} of {key_source()} is not a Fernet key (32 bytes, url-safe "
                    "base64). Make one with: python -c \"from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())\"") from None
        ring = _cache[keys] = MultiFernet(fernets)
    return ring


def encrypt(value: str, name: str, namespace: str) -> str:
    """The ciphertext of `value` for the secret `namespace`/`name`, under the first key.

    Example:
        >>> token = encrypt("hunter2", "DB_PASSWORD", "default")
        >>> decrypt(token, "DB_PASSWORD", "default")
        'hunter2'
    """
    plain = orjson.dumps({"ns": namespace, "n": name, "v": value})
    return str(_keyring().encrypt(plain).decode("ascii"))


def decrypt(ciphertext: str, name: str, namespace: str) -> str:
    """The value of the secret `namespace`/`name` from its ciphertext (any configured key).

    Example:
        >>> decrypt(encrypt("hunter2", "DB_PASSWORD", "default"), "DB_PASSWORD", "default")
        'hunter2'
    """
    from cryptography.fernet import InvalidToken

    try:
        plain = _keyring().decrypt(ciphertext.encode("ascii"))
    except InvalidToken:
        raise SecretKeyMismatch(
            f"secret {name!r} (namespace {namespace!r}) cannot be decrypted with the key(s) of "
            f"{key_source()}: they do not match the key it was written with. Configure that "
            f"key; {ROTATE_HINT}.") from None
    data = orjson.loads(plain)
    if data.get("ns") != namespace or data.get("n") != name:
        raise SecretKeyMismatch(
            f"the stored ciphertext of secret {name!r} (namespace {namespace!r}) belongs to "
            f"secret {data.get('n')!r} (namespace {data.get('ns')!r}): it was copied in the "
            "database. Set the secret again with `stead secrets set`.")
    return str(data["v"])


def reencrypt(ciphertext: str) -> str:
    """The same secret encrypted under the first key (`stead secrets rotate`)."""
    from cryptography.fernet import InvalidToken

    try:
        return str(_keyring().rotate(ciphertext.encode("ascii")).decode("ascii"))
    except InvalidToken:
        raise SecretKeyMismatch(
            f"a stored secret cannot be decrypted with the key(s) of {key_source()}, so it "
            f"cannot be rotated; nothing was changed. Keep the old key in the list: "
            f"{ROTATE_HINT}.") from None
