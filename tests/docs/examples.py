"""The code examples of the docs pages, found by the convention in docs/about-docs.md.

Every ```python block runs, unless the line before its fence is a marker:
``<!-- skip: REASON -->`` (shown only; the reason is required) or ``<!-- file: NAME -->``
(written to NAME in the page's work directory for later blocks and commands, not run).
A ```bash block runs only when marked ``<!-- run -->``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w+)?\s*$")
MARKER = re.compile(r"^<!--\s*(skip|file|run)\s*(?::\s*(.*?))?\s*-->$")


@dataclass(frozen=True)
class Example:
    """One fenced block of a page: what to do with it (run, file, skip, show)."""

    page: str
    line: int      # 1-based line of the opening fence
    language: str
    action: str    # "run", "file", "skip" or "show"
    argument: str  # the file name, or the reason for skipping
    code: str


def examples(page: Path, root: Path) -> list[Example]:
    """The fenced blocks of `page`, in order, with their markers applied.

    Example:
        >>> examples(Path("docs/guide/concepts.md"), Path("."))[0].action
        'run'
    """
    lines = page.read_text().splitlines()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening or opening.group(1) is None:
            i += 1
            continue
        start, language = i, opening.group(1)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{page}:{start + 1}: a ``` block that never closes")
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1)
                         if lines[j].strip()), "")
        marker = MARKER.match(previous)
        action = "run" if language == "python" else "show"
        argument = ""
        if marker:
            action, argument = marker.group(1), marker.group(2) or ""
            if action in ("skip", "file") and not argument:
                raise ValueError(f"{page}:{start + 1}: <!-- {action}: ... --> needs "
                                 f"{'a reason' if action == 'skip' else 'a file name'}")
        found.append(Example(str(page.relative_to(root)), start + 1, language, action,
                             argument, "\n".join(lines[start + 1:end]) + "\n"))
        i = end + 1
    return found
