"""Print the API's OpenAPI document: `python -m stead.server.openapi > docs/openapi.json`.

The committed docs/openapi.json is this output; a test fails when they differ.
"""

from __future__ import annotations

import json
from typing import Any

from stead.server.app import create_app


class _NoDatabase:
    """Stands in for a store: the document describes the routes, it reads nothing."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("the OpenAPI document is made without a database")


def openapi_text() -> str:
    """The document as committed: indented JSON with a final newline."""
    app = create_app(_NoDatabase(), require_auth=True)  # type: ignore[arg-type]
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(openapi_text(), end="")
