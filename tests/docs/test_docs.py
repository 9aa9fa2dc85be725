"""The documentation site builds without a warning, and the examples in its pages run.

A page's examples run in order, each in a fresh interpreter (or bash for marked shell
blocks), in one temporary directory per page with its own STEAD_HOME: the convention is in
docs/about-docs.md and tests/docs/examples.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.examples import Example, examples

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md"))


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: a broken link, a missing page, a docstring the API
    reference cannot render or an unknown option is a failure, not a warning."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    # Not -q: mkdocs then drops the warnings before --strict counts them (the build passes).
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
    import stead

    for name in stead.__all__:  # every public name has its entry in the reference
        assert f'id="stead.{name}"' in api, f"stead.{name} is missing from the API reference"


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert str(page.relative_to(DOCS)) in nav, f"{page} is not in mkdocs.yml's nav"


def page_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STEAD_") or k == "STEAD_TEST_POSTGRES_URL"}
    env.update(STEAD_HOME=str(work / ".stead"), NO_COLOR="1", COLUMNS="120",
               PYTHONPATH=os.pathsep.join([str(work), str(ROOT / "src")]))
    bin_dir = work / ".bin"  # `stead` in shell examples is this checkout's, whatever is on PATH
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "stead"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m stead.cli.main "$@"\n')
    shim.chmod(0o755)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    return env


def run_example(example: Example, work: Path, env: dict[str, str]) -> None:
    if example.action == "file":
        (work / example.argument).write_text(example.code)
        return
    command = ([sys.executable, "-c", example.code] if example.language == "python"
               else ["bash", "-euo", "pipefail", "-c", example.code])
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, (
        f"the example at {example.page}:{example.line} failed (exit {done.returncode}):\n"
        f"{example.code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")


PAGES_WITH_CODE = [p for p in PAGES if any(e.action in ("run", "file")
                                           for e in examples(p, ROOT))]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(DOCS)))
def test_the_examples_of_a_page_run(page: Path, tmp_path: Path) -> None:
    env = page_env(tmp_path)
    for example in examples(page, ROOT):
        if example.action in ("run", "file"):
            run_example(example, tmp_path, env)


def test_the_convention_is_applied(tmp_path: Path) -> None:
    """Markers decide what runs; a skip without a reason is refused."""
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1)\n```\n\n<!-- skip: needs a server -->\n```python\n"
                    "x\n```\n<!-- file: f.py -->\n```python\ny = 1\n```\n```bash\nls\n```\n"
                    "<!-- run -->\n```bash\nstead --help\n```\n```\nplain\n```\n")
    found = [(e.language, e.action, e.argument) for e in examples(page, tmp_path)]
    assert found == [("python", "run", ""), ("python", "skip", "needs a server"),
                     ("python", "file", "f.py"), ("bash", "show", ""), ("bash", "run", "")]
    page.write_text("<!-- skip -->\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="needs a reason"):
        examples(page, tmp_path)


def test_a_failing_example_fails_the_test(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nraise SystemExit('broken example')\n```\n")
    [example] = examples(page, tmp_path)
    with pytest.raises(AssertionError, match="broken example"):
        run_example(example, tmp_path, page_env(tmp_path))
