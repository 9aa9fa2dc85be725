"""Where a step's encoded result lives: inline in its row, or in a file when it is large."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from stead.errors import StoreError


class ResultFiles:
    """Result files under one folder, written atomically before the row that references them."""

    def __init__(self, root: Path, inline_max: int) -> None:
        self.root = root
        self.inline_max = inline_max

    def place(self, run_id: str, key: str, text: str) -> tuple[str | None, str | None]:
        """Return (inline text, None) for small results, (None, file reference) for large ones."""
        if len(text) <= self.inline_max:
            return text, None
        import hashlib

        digest = hashlib.sha256(f"{run_id}/{key}".encode()).hexdigest()[:32]
        ref = f"{digest[:2]}/{digest}.json"
        path = self.root / ref
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            try:  # a partial file (a full disk) is never left behind
                tmp.unlink()
            except OSError:
                pass
            todo = (f"Free space on the disk holding {self.root}, then resume the run"
                    if exc.errno == errno.ENOSPC else
                    "Check that STEAD_RESULTS_DIR is writable and the disk has room")
            raise StoreError(f"cannot write a large result to {path}: {exc}. {todo}.") from exc
        return None, ref

    def load(self, inline: str | None, ref: str | None) -> str:
        if ref is None:
            return inline if inline is not None else "null"
        path = self.root / ref
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"the stored result file {path} cannot be read: {exc}. It may have "
                             "been deleted; resume cannot reuse this step's result.") from exc

    def _path(self, ref: str) -> Path | None:
        """The file of `ref`, or None for a reference that leads out of the folder."""
        rel = Path(ref)
        if rel.is_absolute() or ".." in rel.parts:
            return None
        return self.root / rel

    def size(self, ref: str) -> int:
        """The size of the file in bytes; 0 if it is gone."""
        path = self._path(ref)
        try:
            return path.stat().st_size if path is not None else 0
        except OSError:
            return 0

    def delete(self, ref: str) -> int | None:
        """Delete the file; return the bytes freed, or None if there was no such file.

        Its folder stays, even if empty: a concurrent `place` may be about to write into it.
        """
        path = self._path(ref)
        if path is None:
            return None
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot delete the result file {path}: {exc}. Check that "
                             "STEAD_RESULTS_DIR is writable by this user.") from exc
        return size
