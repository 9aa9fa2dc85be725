"""The storage tests' store: the test's database on each backend (see `backend`)."""

import pytest

from stead.core.runtime import store_for
from stead.store.base import Store


@pytest.fixture
def store(backend: str) -> Store:
    store = store_for()
    assert type(store).__name__ == {"sqlite": "SQLiteStore", "postgres": "PostgresStore",
                                    "http": "HttpStore"}[backend]
    return store
