"""End to end: the tune job's smoke test as CI runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_test_runs_three_trials_and_prints_a_verdict() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "tune.py"), "--smoke-test"],
        capture_output=True, text=True, timeout=400, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "verdict:" in out and "none / bce" in out
    assert out.count("completed") + out.count("stopped_early") + out.count("error") >= 3
    assert "report:" in out


def test_job_reports_a_config_error_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[tune]\nstrategies = ["nope"]\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "tune.py"), "--config", str(config),
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error:")
    assert "nope" in proc.stderr
