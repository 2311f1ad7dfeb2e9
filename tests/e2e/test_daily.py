"""The daily job on the tiny config: two consecutive dates (``two_days``), then the second again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longtail.daily.runner import content_hash
from tests.e2e.conftest import D1, D2, daily

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _outputs(data: Path) -> dict[str, str]:
    skip = {"runs", "tune"}  # manifests carry timestamps; everything else must be identical
    return {
        p.name: content_hash([p])
        for p in sorted(data.iterdir())
        if p.is_dir() and p.name not in skip
    }


def test_each_date_has_a_manifest_with_every_step_done(two_days: Path) -> None:
    for day in (D1, D2):
        manifest = json.loads((two_days / "runs" / f"date={day}" / "manifest.json").read_text())
        statuses = {name: rec["status"] for name, rec in manifest["steps"].items()}
        assert statuses, manifest
        assert set(statuses.values()) <= {"done", "skipped", "not scheduled"}


def test_rerun_of_the_second_date_changes_nothing_and_redoes_nothing(two_days: Path) -> None:
    before = _outputs(two_days)
    daily(two_days, "--date", D2.isoformat())
    manifest = json.loads((two_days / "runs" / f"date={D2}" / "manifest.json").read_text())
    assert {rec["status"] for rec in manifest["steps"].values()} <= {"skipped", "not scheduled"}
    assert _outputs(two_days) == before
