"""The files the production guide shows are real: the systemd units parse, the Dockerfile
copies only what the repository has and installs what the README installs, and the flows
baked into the image run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import script_env

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "examples" / "production"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("unit", ["stead-server.service", "stead-worker@.service"])
def test_the_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    """`systemd-analyze verify` prints a line for every unknown key or bad value (its exit
    code stays 0 for those), so any output is a failure. ExecStart points at a binary of
    this machine, since /opt/stead/venv does not exist here."""
    text = (PRODUCTION / unit).read_text()
    assert "ExecStart=/opt/stead/venv/bin/stead " in text
    name = unit.replace("@.", "@etl.")
    (tmp_path / name).write_text(text.replace("/opt/stead/venv/bin/stead", "/bin/true"))
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / name)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_unit_drains_for_longer_than_its_grace() -> None:
    text = (PRODUCTION / "stead-worker@.service").read_text()
    grace = int(re.search(r"--grace (\d+)", text).group(1))  # type: ignore[union-attr]
    stop = int(re.search(r"TimeoutStopSec=(\d+)", text).group(1))  # type: ignore[union-attr]
    assert stop > grace


def test_the_dockerfile_copies_what_the_repository_has() -> None:
    lines = (PRODUCTION / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"
    assert any("pip install '.[postgres]'" in line for line in lines)


def test_the_image_flows_run(tmp_path: Path) -> None:
    code = "from etl_flows import etl\nassert etl('2026-11-21') == 1\n"
    env = script_env(tmp_path / "home")
    env["PYTHONPATH"] = f"{PRODUCTION / 'flows'}:{ROOT / 'src'}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
