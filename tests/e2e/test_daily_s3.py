"""The daily job with its data directory in an object store (SeaweedFS on loopback).

The driver-side steps write a local working copy; resample, train and score run on
the store. The lists must be those of the same day run on a local data directory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from longtail.paths import Layout
from longtail.storage import DataStore
from tests.e2e.conftest import D1, REPO, TINY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _config(tmp_path: Path, store: DataStore, *, work: Path, extra: str = "") -> Path:
    path = tmp_path / "tiny-s3.toml"
    text = TINY.read_text(encoding="utf-8")
    storage = f'\n[storage]\nendpoint_url = "{store.endpoint_url}"\nwork_dir = "{work}"\n'
    path.write_text(text + storage + extra, encoding="utf-8")
    return path


def _daily(config: Path, store: DataStore) -> subprocess.CompletedProcess[str]:
    # The keys reach the job only through AWS_* (the s3 fixture's environment).
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / "daily.py"), "--config", str(config),
         "--data-dir", store.uri, "--date", D1.isoformat()],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=900,
    )  # fmt: skip


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("generated_at").sort("user_id", "rank")


def test_daily_on_an_object_store_serves_the_lists_of_a_local_run(
    two_days: Path, s3_store: DataStore, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    proc = _daily(_config(tmp_path, s3_store, work=work), s3_store)
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


def test_daily_on_an_object_store_with_the_backtest_refuses_before_writing(
    s3_store: DataStore, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    config = _config(tmp_path, s3_store, work=work, extra="\n[daily]\nbacktest = true\n")
    proc = _daily(config, s3_store)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.startswith(f"error: daily on the object store {s3_store.uri} cannot run")
    assert "\n" not in err
    assert not work.exists()
