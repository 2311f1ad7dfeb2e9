"""The daily job with its data directory in an object store (SeaweedFS on loopback).

The driver-side steps write a local working copy; resample, train, score and the
backtest's rebuilt chain run on the store. The lists and the backtest must be those
of the same day run on a local data directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from longtail.artifacts import BacktestMetrics
from longtail.config import StorageConfig
from longtail.paths import Layout
from longtail.storage import DataStore
from tests.e2e.conftest import D1, REPO, TINY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BACKTEST = "\n[daily]\nbacktest = true\n"


def _config(tmp_path: Path, store: DataStore, *, work: Path) -> Path:
    path = tmp_path / "tiny-s3.toml"
    text = TINY.read_text(encoding="utf-8")
    storage = f'\n[storage]\nendpoint_url = "{store.endpoint_url}"\nwork_dir = "{work}"\n'
    path.write_text(text + BACKTEST + storage, encoding="utf-8")
    return path


def _job(name: str, config: Path, data_dir: str) -> subprocess.CompletedProcess[str]:
    # The keys reach the job only through AWS_* (the s3 fixture's environment).
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / f"{name}.py"), "--config", str(config),
         "--data-dir", data_dir, "--date", D1.isoformat()],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=900,
    )  # fmt: skip


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("generated_at").sort("user_id", "rank")


def _figures(metrics: BacktestMetrics) -> dict[str, object]:
    # Everything but the timings and the run's own clock.
    raw = metrics.model_dump(mode="json")
    return {k: v for k, v in raw.items() if k not in {"timings_s", "created_at"}}


def test_daily_on_an_object_store_serves_and_backtests_as_a_local_run(
    two_days: Path, s3_store: DataStore, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    proc = _job("daily", _config(tmp_path, s3_store, work=work), s3_store.uri)
    assert proc.returncode == 0, proc.stderr[-3000:]

    paths = s3_store.layout
    # What the Ray steps read and wrote is in the store ...
    assert s3_store.is_file(paths.split("train"))
    assert s3_store.is_file(paths.current_model)
    partition = paths.recommendations(D1)
    assert s3_store.has_dataset(partition)
    stored = pl.DataFrame(pl.from_arrow(s3_store.read_table(s3_store.dataset_files(partition))))
    meta = s3_store.dataset_meta(partition)
    assert meta is not None and meta["rows"] == stored.height
    # ... the working copy holds the driver's steps and the lists, never resampled rows,
    local = Layout(work)
    assert not local.resampled.exists()
    lists = pl.read_parquet(local.recommendations(D1) / "*.parquet")
    assert _sorted(stored).equals(_sorted(lists))
    # and the lists are those of the same day on a local data directory.
    expected = pl.read_parquet(Layout(two_days).recommendations(D1) / "*.parquet")
    assert _sorted(stored).equals(_sorted(expected))

    # The backtest's rebuilt chain trained and scored on the store: its model is there,
    # never in the local work folder, and its metrics are committed beside it.
    run = local.backtest_run(D1)
    work_store = DataStore.from_config(
        s3_store_config(s3_store, f"{s3_store.uri}/{run.work.relative_to(work).as_posix()}")
    )
    assert work_store is not None and work_store.is_file(work_store.layout.current_model)
    assert not Layout(run.work).models.exists()
    in_store = s3_store.read_artifact(BacktestMetrics, paths.backtest_metrics(D1))
    assert in_store == BacktestMetrics.load(run.metrics)

    # The same backtest on a local copy of the same day gives the same figures.
    copy = tmp_path / "local"
    shutil.copytree(two_days, copy, ignore=shutil.ignore_patterns("backtest"))
    local_cfg = tmp_path / "tiny-local.toml"
    local_cfg.write_text(TINY.read_text(encoding="utf-8") + BACKTEST, encoding="utf-8")
    proc = _job("backtest", local_cfg, str(copy))
    assert proc.returncode == 0, proc.stderr[-3000:]
    there = BacktestMetrics.load(Layout(copy).backtest_metrics(D1))
    assert _figures(in_store) == _figures(there)
    assert json.loads(run.metrics.read_text())["users_evaluated"] > 0


def s3_store_config(store: DataStore, uri: str) -> StorageConfig:
    """The ``[storage]`` of ``store`` with another prefix."""
    return StorageConfig(uri=uri, endpoint_url=store.endpoint_url, region=store.region)
