"""The Ray Data pipeline: train split in, resampled Parquet parts and a report out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from longtail.config import ResamplingConfig
from longtail.errors import ConfigError, StageError
from longtail.io import write_parquet
from longtail.paths import Layout
from longtail.resampling import (
    SamplingReport,
    pipeline,
    resample_frame,
    resample_train_split,
    resampled_dir,
    train_split_path,
)
from longtail.synthetic import make_train_frame


def _canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path)
    write_parquet(make_train_frame(2_000, seed=21), train_split_path(layout))
    return layout


@pytest.mark.integration
@pytest.mark.parametrize(
    ("strategy", "stratum"),
    [("smote", "label_bucket"), ("tomek", "user_hash"), ("random_under", "category")],
)
def test_ray_pipeline_matches_the_in_process_result(
    ray_session: Any, layout: Layout, strategy: str, stratum: str
) -> None:
    cfg = ResamplingConfig(strategy=strategy, stratum=stratum, max_group_rows=600)
    report = resample_train_split(layout, cfg, seed=4)
    target = resampled_dir(layout, strategy)
    written = pl.read_parquet(target / "train")
    source = pl.read_parquet(train_split_path(layout))
    assert written.schema == source.schema
    expected, expected_report = resample_frame(source, cfg, seed=4)
    assert _canonical(written).equals(_canonical(expected))
    assert report == expected_report
    assert SamplingReport.load(target / "sampling_report.json") == report
    assert report.overall.after == {c: written.filter(pl.col("label") == c).height for c in (0, 1)}


@pytest.mark.integration
def test_streaming_path_for_large_splits_matches_the_in_process_result(
    ray_session: Any, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Splits above the in-memory limit go through the Ray Data shuffle instead.
    monkeypatch.setattr(pipeline, "IN_MEMORY_MAX_BYTES", 0)
    cfg = ResamplingConfig(strategy="smote", stratum="label_bucket", max_group_rows=600)
    report = resample_train_split(layout, cfg, seed=4)
    written = pl.read_parquet(resampled_dir(layout, "smote") / "train")
    source = pl.read_parquet(train_split_path(layout))
    expected, expected_report = resample_frame(source, cfg, seed=4)
    assert written.schema == expected.schema
    assert _canonical(written).equals(_canonical(expected))
    assert report == expected_report


@pytest.mark.integration
def test_ray_output_is_one_part_per_group_and_the_same_on_a_rerun(
    ray_session: Any, layout: Layout
) -> None:
    cfg = ResamplingConfig(strategy="smote", stratum="label_bucket", max_group_rows=600)
    resample_train_split(layout, cfg, seed=4)
    train = resampled_dir(layout, "smote") / "train"
    first = {p.name: pl.read_parquet(p) for p in sorted(train.glob("*.parquet"))}
    resample_train_split(layout, cfg, seed=4)
    second = {p.name: pl.read_parquet(p) for p in sorted(train.glob("*.parquet"))}
    assert len(first) > 1 and list(first) == list(second)
    assert all(first[name].equals(second[name]) for name in first)


@pytest.mark.integration
def test_ray_pipeline_refuses_a_train_file_with_validation_rows(
    ray_session: Any, tmp_path: Path
) -> None:
    layout = Layout(tmp_path)
    mixed = pl.concat([make_train_frame(300, seed=1), make_train_frame(30, split="test")])
    write_parquet(mixed, train_split_path(layout))
    with pytest.raises(StageError, match="only train rows may be resampled"):
        resample_train_split(layout, ResamplingConfig(strategy="smote"), seed=0)
    assert not resampled_dir(layout, "smote").exists()


@pytest.mark.integration
def test_bad_params_fail_before_reading_data(tmp_path: Path) -> None:
    cfg = ResamplingConfig(strategy="adasyn", params={"k_neighbors": 3})
    with pytest.raises(ConfigError, match="'adasyn' has no parameter 'k_neighbors'"):
        resample_train_split(Layout(tmp_path), cfg, seed=0)


@pytest.mark.integration
def test_missing_train_split_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="train split not found"):
        resample_train_split(Layout(tmp_path), ResamplingConfig(strategy="none"), seed=0)


@pytest.mark.unit
@pytest.mark.parametrize("strata", [["head#0"], ["head#0", "tail#1"]])
def test_part_counts_match_a_group_by(strata: list[str]) -> None:
    from longtail.resampling.pipeline import _MARKS, SYNTHETIC_COLUMN, _part_counts
    from longtail.resampling.stratify import STRATUM_COLUMN
    from longtail.schema import LABEL

    n = 60
    out = pl.DataFrame(
        {
            STRATUM_COLUMN: [strata[i % len(strata)] for i in range(n)],
            LABEL: [int(i % 7 == 0) for i in range(n)],
            SYNTHETIC_COLUMN: [i >= 45 for i in range(n)],
        }
    )
    expected = out.group_by(list(_MARKS)).len().rows()
    assert sorted(_part_counts(out)) == sorted(expected)
    assert _part_counts(out.clear()) == []
