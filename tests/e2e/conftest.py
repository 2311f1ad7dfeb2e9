"""The tiny shop's daily run, shared by the end-to-end tests: two dates, as a user runs them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "configs" / "tiny.toml"
D1, D2 = dt.date(2024, 1, 20), dt.date(2024, 1, 21)


def daily(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``jobs/daily.py`` on the tiny config into ``data``; fail with its stderr."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "daily.py"), "--config", str(TINY),
         "--data-dir", str(data), *args],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="package")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA_DIR after the daily job ran D1, then D2 (at ``<tmp>/data/demo``, the demo's place).

    The folder sits where the checked-in ``feature_repo/feature_store.yaml`` expects the
    demo data (``../data/demo``), so a copy of the repo beside it works unchanged.
    """
    data = tmp_path_factory.mktemp("shop") / "data" / "demo"
    daily(data, "--date", D1.isoformat())
    daily(data, "--date", D2.isoformat())
    return data
