"""Where a step's encoded result lives: inline in its row, or in a file when it is large."""

from __future__ import annotations

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
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise StoreError(f"cannot write a large result to {path}: {exc}. Check that "
                             "STEAD_RESULTS_DIR is writable and the disk has room.") from exc
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
