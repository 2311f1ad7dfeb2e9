"""Strata, group splitting and stratified subsampling."""

from __future__ import annotations

import polars as pl
import pytest

from longtail.config import ResamplingConfig
from longtail.resampling import resample_frame
from longtail.resampling.stratify import group_parts, row_hash, stratum_values
from longtail.schema import LABEL, POPULARITY_BUCKET
from longtail.synthetic import make_train_frame
from tests.resampling.helpers import stratified_subsample


def _shares(frame: pl.DataFrame) -> dict[tuple[int, str], float]:
    counts = frame.group_by(LABEL, POPULARITY_BUCKET).len()
    return {(r[0], r[1]): r[2] / frame.height for r in counts.iter_rows()}


@pytest.mark.unit
def test_stratified_subsample_keeps_each_label_bucket_share() -> None:
    frame = make_train_frame(20_000, seed=2)
    cut = stratified_subsample(frame, target_rows=2_000, seed=1)
    assert cut.height == 2_000
    before, after = _shares(frame), _shares(cut)
    assert set(after) == set(before)
    for cell, share in before.items():
        assert after[cell] == pytest.approx(share, abs=1 / 2_000), cell
    # Kept rows are input rows, and the same seed keeps the same rows.
    assert cut.join(frame, on=frame.columns, how="anti", nulls_equal=True).height == 0
    assert stratified_subsample(frame, target_rows=2_000, seed=1).equals(cut)
    assert not stratified_subsample(frame, target_rows=2_000, seed=2).equals(cut)


@pytest.mark.unit
def test_stratified_subsample_never_empties_a_rare_tail_positive_cell() -> None:
    frame = make_train_frame(5_000, seed=3)
    cut = stratified_subsample(frame, target_rows=60, seed=0)
    tail_pos = cut.filter((pl.col(LABEL) == 1) & (pl.col(POPULARITY_BUCKET) == "tail"))
    assert tail_pos.height >= 1


@pytest.mark.unit
def test_subsampling_rate_is_in_the_report() -> None:
    frame = make_train_frame(10_000, seed=4)
    cfg = ResamplingConfig(strategy="none", target_rows=1_000)
    out, report = resample_frame(frame, cfg, seed=0)
    assert out.height == 1_000
    # Each of the 6 (label, bucket) cells rounds its share by less than one row.
    for cls in (0, 1):
        assert report.overall.after[cls] == pytest.approx(report.overall.before[cls] / 10, abs=3)
        assert report.overall.rate(cls) == pytest.approx(0.1, rel=0.15)


@pytest.mark.unit
def test_group_parts_bound_every_group() -> None:
    assert group_parts({"head": 1_000, "tail": 100, "torso": 301}, max_group_rows=100) == {
        "head": 10,
        "tail": 1,
        "torso": 4,
    }


@pytest.mark.unit
def test_large_strata_are_split_by_hash_and_each_part_is_resampled() -> None:
    frame = make_train_frame(6_000, seed=5)
    cfg = ResamplingConfig(strategy="random_under", params={"sampling_strategy": 1.0})
    whole, _ = resample_frame(frame, cfg, seed=0)
    split, _ = resample_frame(frame, cfg.model_copy(update={"max_group_rows": 500}), seed=0)
    # Per part the classes are balanced, so the overall ratio holds either way ...
    for out in (whole, split):
        assert out.filter(pl.col(LABEL) == 0).height == out.filter(pl.col(LABEL) == 1).height
    # ... but the draw differs: the sampler saw smaller groups.
    assert not whole.sort(frame.columns).equals(split.sort(frame.columns))


@pytest.mark.unit
def test_cap_bounds_the_rows_a_sampler_sees() -> None:
    frame = make_train_frame(6_000, seed=6)
    sizes = dict(
        frame.with_columns(stratum_values(frame, "label_bucket", user_hash_buckets=1))
        .group_by("__stratum")
        .len()
        .iter_rows()
    )
    parts = group_parts(sizes, max_group_rows=500)
    bucket = frame.get_column(POPULARITY_BUCKET).to_list()
    h = row_hash(frame, seed=7)
    group_sizes: dict[tuple[str, int], int] = {}
    for b, v in zip(bucket, h, strict=True):
        key = (b, int(v) % parts[b])
        group_sizes[key] = group_sizes.get(key, 0) + 1
    assert max(group_sizes.values()) <= 500 * 1.25


@pytest.mark.unit
@pytest.mark.parametrize("stratum", ["label_bucket", "category", "user_hash"])
def test_stratum_values_are_strings_per_row(stratum: str) -> None:
    frame = make_train_frame(500, seed=1)
    values = stratum_values(frame, stratum, user_hash_buckets=4)
    assert values.dtype == pl.String and values.len() == frame.height
    if stratum == "user_hash":
        assert set(values.to_list()) <= {"0", "1", "2", "3"}
        # The same user is always in the same bucket.
        pairs = frame.select("user_id").with_columns(values).unique()
        assert pairs.height == frame.get_column("user_id").n_unique()
