"""Resampling on Ray with the data directory in an object store (SeaweedFS on loopback)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from longtail.config import ResamplingConfig
from longtail.errors import StageError
from longtail.resampling import (
    SamplingReport,
    pipeline,
    resample_frame,
    resample_train_split,
    resampled_dir,
    train_split_path,
)
from longtail.storage import DataStore
from longtail.synthetic import make_train_frame


def _cwd() -> str:
    return os.getcwd()


def _canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


@pytest.fixture
def source(s3_store: DataStore) -> pl.DataFrame:
    """A train split put straight into the store (no local copy of it anywhere)."""
    frame = make_train_frame(2_000, seed=21)
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    s3_store.write_bytes(train_split_path(s3_store.layout), buffer.getvalue())
    return frame


def _written(store: DataStore, strategy: str) -> pl.DataFrame:
    folder = resampled_dir(store.layout, strategy) / "train"
    return pl.DataFrame(pl.from_arrow(store.read_table(store.dataset_files(folder))))


@pytest.mark.integration
@pytest.mark.parametrize("streaming", [False, True], ids=["in_memory", "ray_data_shuffle"])
def test_resampling_reads_and_writes_only_the_object_store(
    ray_session: Any,
    s3_store: DataStore,
    source: pl.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    streaming: bool,
) -> None:
    if streaming:
        monkeypatch.setattr(pipeline, "IN_MEMORY_MAX_BYTES", 0)
    monkeypatch.chdir(tmp_path)
    cfg = ResamplingConfig(strategy="smote", stratum="label_bucket", max_group_rows=600)
    report = resample_train_split(s3_store, cfg, seed=4)

    written = _written(s3_store, "smote")
    expected, expected_report = resample_frame(source, cfg, seed=4)
    assert written.schema == source.schema
    assert _canonical(written).equals(_canonical(expected))
    assert report == expected_report
    saved = s3_store.read_json(s3_store.layout.sampling_report("smote"))
    assert SamplingReport.model_validate(saved) == report
    # Keys look like relative paths: a stray local write would have made them here,
    # in the driver's folder, or in the workers' one.
    worker_cwd = ray_session.get(ray_session.remote(_cwd).remote())
    assert list(tmp_path.iterdir()) == []
    assert not (Path(worker_cwd) / s3_store.bucket).exists()


@pytest.mark.integration
def test_a_missing_train_split_in_the_store_says_how_to_push_it(
    ray_session: Any, s3_store: DataStore
) -> None:
    cfg = ResamplingConfig(strategy="random_under")
    with pytest.raises(StageError, match=r"s3://.*train\.parquet.*--push training"):
        resample_train_split(s3_store, cfg, seed=4)
