from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from longtail import schema as S
from longtail.errors import StageError
from longtail.paths import RecommendationPartition
from longtail.scoring.output import write_partition

pytestmark = pytest.mark.unit


def _recs(users: list[int], k: int = 3, offset: int = 0) -> pl.DataFrame:
    rows = [
        {
            S.USER_ID: u,
            "rank": r + 1,
            S.ITEM_ID: 100 + r + offset,
            "score": 1.0 - r / 10,
            "probability": 0.1,
            "model_version": "v1",
            "strategy": "none",
            "feature_service": "ranking_v1",
            "generated_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        }
        for u in users
        for r in range(k)
    ]
    return pl.DataFrame(rows).with_columns(pl.col("rank").cast(pl.UInt32))


def test_partition_and_manifest_are_written(tmp_path: Path) -> None:
    target = tmp_path / "date=2024-01-01"
    m = write_partition(
        _recs([1, 2]),
        target,
        expected_users=pl.Series([1, 2]),
        k=3,
        manifest={"model_version": "v1"},
    )
    assert m["users_expected"] == m["users_written"] == 2
    assert json.loads(RecommendationPartition(target).manifest.read_text())["rows"] == 6
    assert pl.read_parquet(target / "*.parquet").height == 6


def test_a_crash_before_the_swap_leaves_the_previous_partition(tmp_path: Path) -> None:
    target = tmp_path / "recommendations" / "date=2024-01-01"
    write_partition(_recs([1, 2]), target, expected_users=pl.Series([1, 2]), k=3, manifest={})
    before = pl.read_parquet(target / "*.parquet")
    with pytest.raises(RuntimeError, match="injected crash"):
        write_partition(
            _recs([1, 2], offset=50), target, expected_users=pl.Series([1, 2]), k=3,
            manifest={}, fail_after_write=True,
        )  # fmt: skip
    assert pl.read_parquet(target / "*.parquet").equals(before)
    assert [p.name for p in target.parent.iterdir()] == ["date=2024-01-01"]
    assert {p.name for p in target.iterdir()} == {"part-0.parquet", "_manifest.json"}


def test_missing_user_is_refused_and_nothing_written(tmp_path: Path) -> None:
    target = tmp_path / "date=2024-01-01"
    with pytest.raises(StageError, match="1 expected users have no list"):
        write_partition(_recs([1]), target, expected_users=pl.Series([1, 2]), k=3, manifest={})
    assert not target.exists()


def test_repeated_item_in_a_list_is_refused(tmp_path: Path) -> None:
    recs = _recs([1]).with_columns(pl.lit(7, pl.Int64).alias(S.ITEM_ID))
    with pytest.raises(StageError, match="an item repeats"):
        write_partition(recs, tmp_path / "p", expected_users=pl.Series([1]), k=3, manifest={})


def test_probability_outside_unit_interval_is_refused(tmp_path: Path) -> None:
    recs = _recs([1]).with_columns(pl.lit(1.5).alias("probability"))
    with pytest.raises(StageError, match="outside"):
        write_partition(recs, tmp_path / "p", expected_users=pl.Series([1]), k=3, manifest={})
