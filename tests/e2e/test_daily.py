"""The daily job on the tiny config: two consecutive dates, then the second again."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from longtail.daily.runner import content_hash

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "configs" / "tiny.toml"
D1, D2 = dt.date(2024, 1, 20), dt.date(2024, 1, 21)


def _daily(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "daily.py"), "--config", str(TINY),
         "--data-dir", str(data), *args],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _outputs(data: Path) -> dict[str, str]:
    skip = {"runs", "tune"}  # manifests carry timestamps; everything else must be identical
    return {
        p.name: content_hash([p])
        for p in sorted(data.iterdir())
        if p.is_dir() and p.name not in skip
    }


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("daily")
    _daily(data, "--date", D1.isoformat())
    _daily(data, "--date", D2.isoformat())
    return data


def test_each_date_has_a_manifest_with_every_step_done(two_days: Path) -> None:
    for day in (D1, D2):
        manifest = json.loads((two_days / "runs" / f"date={day}" / "manifest.json").read_text())
        statuses = {name: rec["status"] for name, rec in manifest["steps"].items()}
        assert statuses, manifest
        assert set(statuses.values()) <= {"done", "skipped", "not scheduled"}


def test_rerun_of_the_second_date_changes_nothing_and_redoes_nothing(two_days: Path) -> None:
    before = _outputs(two_days)
    _daily(two_days, "--date", D2.isoformat())
    manifest = json.loads((two_days / "runs" / f"date={D2}" / "manifest.json").read_text())
    assert {rec["status"] for rec in manifest["steps"].values()} <= {"skipped", "not scheduled"}
    assert _outputs(two_days) == before
