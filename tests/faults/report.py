"""Print the fault matrix's last figures as a Markdown table (for docs/reliability.md).

    python -m tests.faults.report [FIGURES.jsonl]

Reads the rows tests/faults/ appended (default: $STEAD_FAULTS_FIGURES, else
build/faults-figures.jsonl) and keeps the latest row of each scenario and backend.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "build" / "faults-figures.jsonl"
COLUMNS = [("runs", "runs"), ("steps", "steps"), ("executions", "bodies run"),
           ("reruns", "in-flight re-runs"), ("duplicates", "finished run twice"),
           ("lost", "lost"), ("stuck", "stuck"), ("not_completed", "not Completed"),
           ("slots_leaked", "slots leaked"), ("recoveries", "recoveries"),
           ("handbacks", "hand-backs"),
           ("recover_s", "recover s"), ("seconds", "wall s")]


def _order(row: dict) -> tuple:
    match = re.match(r"(\d+)(\w?)", row["scenario"])
    number = (int(match.group(1)), match.group(2)) if match else (999, "")
    return (*number, row["scenario"], row["backend"])


def latest(path: Path) -> list[dict]:
    rows: dict[tuple[str, str], dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(row["scenario"], row["backend"])] = row
    return sorted(rows.values(), key=_order)


def table(rows: list[dict]) -> str:
    head = ["scenario", "backend", "outcome", *(title for _, title in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["scenario"], row["backend"],
                 "pass" if row["outcome"] == "passed" else f"**{row['outcome'].upper()}**"]
        for name, _ in COLUMNS:
            value = row.get(name, 0 if name == "handbacks" else None)
            cells.append("-" if value is None else f"{value:g}" if isinstance(value, float)
                         else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failures(rows: list[dict]) -> str:
    out = []
    for row in rows:
        if row["outcome"] != "passed":
            out.append(f"- {row['scenario']} ({row['backend']}): {row['failure']}")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path(os.environ.get("STEAD_FAULTS_FIGURES", DEFAULT))
    if not path.exists():
        print(f"no figures at {path}: run `python -m pytest tests/faults` first",
              file=sys.stderr)
        return 1
    rows = latest(path)
    newest = max(row["at"] for row in rows)
    stamp = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Figures of {stamp} ({path}):\n")
    print(table(rows))
    failed = failures(rows)
    if failed:
        print("\nFailures:\n")
        print(failed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
