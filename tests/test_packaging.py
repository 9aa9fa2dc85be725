"""The package's metadata: the SPDX license with its file, and a runtime dependency for every
third-party module Stead imports (a plain `pip install stead` must be able to import it)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
# Imported only when the optional backend is used, and named in its error message.
OPTIONAL = {"psycopg": "postgres", "psycopg-pool": "postgres"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_closure(requirements: list[str]) -> set[str]:
    """The distributions installing `requirements` brings (with the extras they name)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name, extras = _norm(req.name), frozenset(req.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e})
                                         for e in {"", *extras}):
                todo.append(sub)
    return {name for name, _ in seen}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in src/stead -> the files doing so."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "src" / "stead").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "stead" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_license_is_an_spdx_expression_with_its_file() -> None:
    assert PROJECT["license"] == "Apache-2.0"  # not the deprecated {text = ...} table
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    setuptools = next(Requirement(r) for r in PYPROJECT["build-system"]["requires"]
                      if Requirement(r).name == "setuptools")
    assert not setuptools.specifier.contains("76.9")  # SPDX licenses need setuptools >= 77


def test_every_imported_package_is_a_runtime_dependency() -> None:
    runtime = _installed_closure(PROJECT["dependencies"])
    extras = PROJECT["optional-dependencies"]
    by_module = md.packages_distributions()
    missing = []
    for module, files in sorted(_third_party_imports().items()):
        dists = {_norm(d) for d in by_module.get(module, [module])}
        if dists & runtime:
            continue
        extra = next((OPTIONAL[d] for d in dists if d in OPTIONAL), None)
        if extra is not None and dists & _installed_closure(extras[extra]):
            continue
        missing.append(f"{module} ({', '.join(sorted(files)[:2])})")
    assert missing == [], f"imported but not installed by `pip install stead`: {missing}"
