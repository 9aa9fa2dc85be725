"""MkDocs hooks (mkdocs.yml `hooks:`): the API reference lists every name of `stead.__all__`.

The page docs/reference/api.md holds the marker ``<!-- public-api -->``; this hook replaces
it with one mkdocstrings entry per public name, read from src/stead/__init__.py without
importing it, so a name added to the public API appears in the reference by itself.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

MARKER = "<!-- public-api -->"
INIT = Path(__file__).resolve().parents[1] / "src" / "stead" / "__init__.py"


def public_names(init: Path = INIT) -> list[str]:
    """The strings of the module's ``__all__`` list, in their order.

    Example:
        >>> "flow" in public_names()
        True
    """
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    raise ValueError(f"{init} has no __all__ list")


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    entries = "\n\n".join(f"::: stead.{name}" for name in public_names())
    return markdown.replace(MARKER, entries)
