"""The daily job on the tiny config: two consecutive dates (``two_days``), then the second again."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from longtail.daily.runner import content_hash
from longtail.paths import MODEL_WEIGHTS, Layout
from tests.e2e.conftest import D1, D2, TINY, daily

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
        manifest = json.loads(Layout(two_days).daily_run(day).manifest.read_text())
        statuses = {name: rec["status"] for name, rec in manifest["steps"].items()}
        assert statuses, manifest
        assert set(statuses.values()) <= {"done", "skipped", "not scheduled"}


def test_rerun_of_the_second_date_changes_nothing_and_redoes_nothing(two_days: Path) -> None:
    before = _outputs(two_days)
    daily(two_days, "--date", D2.isoformat())
    manifest = json.loads(Layout(two_days).daily_run(D2).manifest.read_text())
    assert {rec["status"] for rec in manifest["steps"].values()} <= {"skipped", "not scheduled"}
    assert _outputs(two_days) == before


def _lists(data: Path, day: dt.date) -> pl.DataFrame:
    part = Layout(data).recommendations(day)
    return pl.read_parquet(part / "*.parquet").drop("generated_at").sort("user_id", "rank")


def _model(data: Path) -> tuple[str, dict[str, Any]]:
    layout = Layout(data)
    version = json.loads(layout.current_model.read_text())["version"]
    digest = hashlib.sha256((layout.model(version) / MODEL_WEIGHTS).read_bytes()).hexdigest()
    return digest, json.loads(layout.model_manifest(version).read_text())


def test_forced_rerun_redoes_every_step_and_writes_the_same_lists(two_days: Path) -> None:
    # D1's first run trained its model (none existed), so a forced rerun of D1
    # retrains on the same inputs and must give the same lists. The schedule
    # says no (trained 0 days ago): --force trains anyway.
    before = _lists(two_days, D1)
    daily(two_days, "--date", D1.isoformat(), "--force")
    manifest = json.loads(Layout(two_days).daily_run(D1).manifest.read_text())
    statuses = {name: rec["status"] for name, rec in manifest["steps"].items()}
    assert "train" in statuses and "ingest" in statuses
    assert set(statuses.values()) == {"done"}, statuses  # every step, train included
    assert _lists(two_days, D1).equals(before)
    # The partition is a plain Parquet dataset: reports sit beside it.
    assert {p.name for p in Layout(two_days).recommendations(D1).iterdir()} == {
        "part-0.parquet",
        "_manifest.json",
    }
    assert Layout(two_days).scoring_report(D1).page.is_file()
    assert not list(two_days.rglob(".*.tmp-*"))


def test_a_retrain_with_another_rate_and_embedding_size_trains_a_new_model(
    two_days: Path, tmp_path: Path
) -> None:
    old_digest, old = _model(two_days)
    config = tmp_path / "tiny_changed.toml"
    config.write_text(
        TINY.read_text()
        + '\n[train]\nlearning_rate = 0.01\nembedding_dim = 8\n[daily]\nretrain = "always"\n'
    )
    # The current model is D1's (D2's run was not due to retrain): retrain that date.
    assert old["version"].startswith(D1.isoformat())
    proc = daily(two_days, "--date", D1.isoformat(), "--config", str(config))
    assert "resumed from checkpoint" not in proc.stdout + proc.stderr
    manifest = json.loads(Layout(two_days).daily_run(D1).manifest.read_text())
    assert manifest["steps"]["train"]["status"] == "done"
    new_digest, new = _model(two_days)
    assert new["version"] == old["version"]  # same date, strategy and loss: same name
    assert new_digest != old_digest
    assert new["train_config"]["learning_rate"] == 0.01
    assert new["train_config"]["embedding_dim"] == 8
    assert old["train_config"]["embedding_dim"] != 8
    assert {h["restarts"] for h in new["history"]} == {0.0}  # trained from scratch
