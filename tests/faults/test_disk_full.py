"""A full disk (matrix row 9): the SQLite database and the result files live on a 2 MiB
tmpfs that a flow with large results fills. The run must stay visible and resumable, the
database intact, the error Stead's own (naming the disk), and once there is room again a
resume finishes it without running any finished step again."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stead.core.runtime import close_stores, store_for
from stead.settings import reset_settings
from tests.faults.harness import Figures, finish, finished_steps, start_cli, start_direct


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only: mount(8))."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"mounting a tmpfs needs root: {mounted.stderr}"
    yield disk
    close_stores()
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.parametrize("size", [100_000, 300_000], ids=["db-fills", "results-fill"])
def test_a_full_disk_leaves_a_resumable_run(size: int, small_disk: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            figures: Callable[..., Figures]) -> None:
    """With 100 kB results SQLite's commit meets the full disk first; with 300 kB results
    the result file's write does."""
    fig = figures(f"9 full disk, {size // 1000} kB results", "sqlite",
                  f"40 results of {size // 1000} kB on a 2 MiB tmpfs (SQLite + results), "
                  "then room made, then resume")
    home = small_disk / "home"
    monkeypatch.setenv("STEAD_HOME", str(home))
    reset_settings()
    close_stores()
    db = store_for()
    url = db.url
    out = tmp_path / "executions.txt"  # outside the full disk
    rid = "disk-full"
    log = tmp_path / "flow.log"
    code = finish(start_direct(home, "blobs", rid, {"out": str(out), "n": 40,
                                                    "size": size}, log), 120)
    text = log.read_text(errors="replace")
    fig.notes.append(f"flow exited {code}: {text.strip().splitlines()[-1][:200] if text else ''}")
    assert code not in (0, None), text  # 4 MB of results cannot fit in 2 MiB
    integrity = sqlite3.connect(url.removeprefix("sqlite:///")).execute(
        "PRAGMA integrity_check").fetchone()[0]
    assert integrity == "ok"
    before = {rid: finished_steps(db, rid)}
    state = db.get_run(rid).state
    fig.notes.append(f"after the disk filled: {state}, {len(before[rid])} steps finished")
    remount = subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)],
                             capture_output=True, text=True)
    assert remount.returncode == 0, remount.stderr
    resume = finish(start_cli(home, "runs", "resume", rid, log=log), 120)
    fig.tally(db, [rid], out, allowance={rid: 1}, finished_before=before, url=url)
    fig.check()
    assert resume == 0, log.read_text(errors="replace")
    # What the user is left with is Stead's error naming the full disk, not a bare sqlite3 one.
    last = text.strip().splitlines()[-1]
    assert last.startswith("stead.errors.StoreError") and ("No space" in last or "full" in last), \
        last
