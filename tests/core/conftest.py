"""Every engine test runs on both backends: SQLite and PostgreSQL."""

import pytest


@pytest.fixture(autouse=True)
def _every_backend(backend: str) -> str:
    return backend
