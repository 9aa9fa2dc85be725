"""What importing Stead costs: `import stead`, the engine (`from stead import flow, task`),
and one leaf module (`import stead.errors`, which the CLI and server import first).

Run: python bench/import_time.py [--repeat 30]

Each statement runs in a fresh interpreter that times only the import (perf_counter around
it), so the interpreter's own start-up and machine noise between runs stay out; figures are
the minimum and the median of --repeat runs. Python byte-code caches are compiled first
(`compileall`), as an installed package has them: with PYTHONDONTWRITEBYTECODE set and an
editable install, every start would compile Stead's sources again, which costs about twice
the import itself. `python -X importtime -c "import stead"` shows where the time goes.
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
from pathlib import Path

STATEMENTS = ("import stead", "from stead import flow, task", "import stead.errors")


def import_ms(statement: str, repeat: int) -> tuple[float, float]:
    """(minimum, median) milliseconds of `statement` in fresh interpreters."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    samples = [float(subprocess.run([sys.executable, "-c", code], check=True,
                                    capture_output=True, text=True).stdout)
               for _ in range(repeat)]
    return min(samples) * 1000, statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    import stead

    compileall.compile_dir(str(Path(stead.__file__).parent), quiet=1)
    for statement in STATEMENTS:
        low, mid = import_ms(statement, args.repeat)
        print(f"{statement:<30} min {low:6.1f} ms  median {mid:6.1f} ms")


if __name__ == "__main__":
    main()
