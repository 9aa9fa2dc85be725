"""The package's layout rules: modules small enough to read in one sitting, and dependencies
pointing one way (core <- store <- worker, server, cli), checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "stead"
MODULES = sorted(SRC.rglob("*.py"))
MAX_LINES = 500

# Who may not import whom (imports inside functions count too: a lazy import is still a
# dependency). The store knows nothing of the engine; the engine knows nothing of the
# processes and front ends built on it.
FORBIDDEN = {
    "store": ("stead.core", "stead.worker", "stead.server", "stead.cli", "stead.deployments"),
    "core": ("stead.worker", "stead.server", "stead.cli", "stead.ui"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_no_module_is_longer_than_500_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in MODULES
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, (f"modules over {MAX_LINES} lines: {long}; split each by concept into "
                      "modules of its package (docs/architecture.md lists them)")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package: str) -> None:
    wrong = [f"{p.relative_to(SRC)}:{line} imports {name}"
             for p in sorted((SRC / package).rglob("*.py"))
             for line, name in _imports(p)
             if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package])]
    assert not wrong, "\n".join(wrong)


def test_the_store_interface_is_every_part_of_it() -> None:
    """`Store` is its parts put together: every verb of a part is a verb of `Store`, and the
    wire lists each part, so a remote process and the server's permissions see them all."""
    from stead.store import base, wire

    verbs = {name for part in base.STORE_PARTS for name, value in vars(part).items()
             if callable(value) and not name.startswith("_")}
    assert verbs <= set(dir(base.Store))
    assert "create_run" in verbs and "claim_runs" in verbs and "prune_runs" in verbs
    assert set(base.STORE_PARTS) <= set(wire.PARTS)
    assert verbs - wire.LOCAL_ONLY <= wire.VERBS
