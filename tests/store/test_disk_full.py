"""A full disk under the SQLite database and its results: Stead's StoreError says which file
and what to do (never a bare sqlite3 error), no partial result file is left behind, and the
run resumes once space is freed. On a real 2 MB tmpfs (skipped where mounting is refused)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stead import flow, task
from stead.core.runtime import close_stores, store_for
from stead.errors import StoreError
from stead.settings import reset_settings
from tests.conftest import SCRIPTS

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def small_disk(tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    monkeypatch.setenv("STEAD_DATABASE_URL", f"sqlite:///{disk / 'stead.db'}")
    monkeypatch.delenv("STEAD_RESULTS_DIR", raising=False)
    close_stores()
    reset_settings()
    try:
        yield disk
    finally:
        close_stores()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@task
def big(i: int) -> str:
    return f"{i}" * 300_000  # a result file of its own (over STEAD_RESULT_INLINE_MAX)


@flow
def large_results(n: int) -> int:
    return sum(len(big(i)) for i in range(n))


def test_a_full_disk_while_writing_result_files_leaves_no_partial_file(
        small_disk: Path) -> None:
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * 1_200_000)
    with pytest.raises(StoreError, match="Free space on the disk holding"):
        large_results.with_options(run_id="big-results")(4)
    results = small_disk / "results"
    assert [p.name for p in results.rglob("*") if ".tmp" in p.name] == []
    filler.unlink()  # free space; the run picks up from its recorded steps
    assert large_results.resume("big-results") == 4 * 300_000


def test_a_full_disk_under_the_database_raises_store_error_then_resumes(
        small_disk: Path, tmp_path: Path) -> None:
    filler = small_disk / "filler"
    marker = tmp_path / "filled"
    done = subprocess.run([sys.executable, str(SCRIPTS / "full_disk.py"), "small-steps",
                           str(marker), str(filler), "50"], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)
    said = done.stdout.strip()
    assert said.startswith("stead.errors.StoreError: "), done.stdout + done.stderr
    assert "full" in said and f"free space on the disk holding {small_disk}" in said
    assert "sqlite3" not in done.stderr, done.stderr
    filler.unlink()
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    import full_disk

    assert full_disk.small_steps.resume("small-steps") == 50 * 800
    assert store_for().get_run("small-steps").state == "Completed"
