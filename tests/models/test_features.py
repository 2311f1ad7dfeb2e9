from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from longtail.errors import StageError
from longtail.models import FeatureSpec, encode, fit_feature_spec, hash_ids

pytestmark = pytest.mark.unit


def _rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [1, 2, None],
            "item_id": [10, 20, 30],
            "item_category_id": [5, None, 7],
            "item_popularity_bucket": ["head", "tail", "torso"],
            "label": [0, 1, 0],
            "user_views_7d": [1.0, None, 3.0],
            "item_price": [2, 4, 6],
            "user_recent_items": [[10, 20, 30, 40], [], None],
        },
        schema_overrides={"user_recent_items": pl.List(pl.Int64), "user_id": pl.Int64},
    )


def test_hash_ids_is_stable_and_in_range() -> None:
    ids = np.array([0, 1, 2, 2**62, -5], dtype=np.int64)
    out = hash_ids(ids, buckets=100)
    assert out.min() >= 1 and out.max() <= 99
    np.testing.assert_array_equal(out, hash_ids(ids.copy(), buckets=100))
    # Pinned: the hash must never change, or saved models would score wrong rows.
    np.testing.assert_array_equal(hash_ids(np.array([1, 2, 3]), buckets=1000), [604, 548, 560])


def test_fit_feature_spec_standardizes_dense_columns_and_builds_vocabulary() -> None:
    spec = fit_feature_spec(_rows(), hash_buckets_user=50, hash_buckets_item=50, sequence_length=2)
    assert spec.dense_columns == ("user_views_7d", "item_price")
    assert spec.dense_mean == pytest.approx((2.0, 4.0))
    assert spec.dense_std[0] == pytest.approx(1.0)
    assert spec.categories == (5, 7)
    assert spec.sequence_length == 2


def test_sequence_is_off_without_recent_items_column() -> None:
    rows = _rows().drop("user_recent_items")
    spec = fit_feature_spec(rows, hash_buckets_user=50, hash_buckets_item=50, sequence_length=4)
    assert spec.sequence_length == 0
    assert "recent_items" not in encode(rows, spec)


def test_encode_maps_nulls_and_unknowns_to_zero() -> None:
    spec = fit_feature_spec(_rows(), hash_buckets_user=50, hash_buckets_item=50, sequence_length=3)
    unseen = _rows().with_columns(pl.Series("item_category_id", [5, 99, None]))
    out = encode(unseen, spec)
    assert out["user"][2] == 0 and out["user"][0] > 0
    assert out["category"].tolist() == [1, 0, 0]
    np.testing.assert_allclose(out["dense"][:, 0], [-1.0, 0.0, 1.0])
    assert out["dense"].dtype == np.float32
    # Last 3 items, right-aligned; empty and null histories are all padding.
    expected_tail = hash_ids(np.array([20, 30, 40]), buckets=50)
    np.testing.assert_array_equal(out["recent_items"][0], expected_tail)
    np.testing.assert_array_equal(out["recent_items"][1:], np.zeros((2, 3)))
    # The item in the sequence hashes like the item column.
    assert out["recent_items"][0][0] == out["item"][1]


def test_encode_maps_nan_and_infinite_dense_values_to_zero() -> None:
    spec = fit_feature_spec(_rows(), hash_buckets_user=50, hash_buckets_item=50)
    odd = _rows().with_columns(
        pl.Series("user_views_7d", [float("nan"), float("inf"), -float("inf")]),
        pl.Series("item_price", [1e300, 4.0, 6.0]),  # finite, but not in float32
    )
    dense = encode(odd, spec)["dense"]
    assert np.isfinite(dense).all()
    np.testing.assert_array_equal(dense[:, 0], [0.0, 0.0, 0.0])
    assert dense[0, 1] == 0.0 and dense[2, 1] > 0.0


def test_spec_round_trips_through_json() -> None:
    spec = fit_feature_spec(_rows(), hash_buckets_user=50, hash_buckets_item=60)
    assert FeatureSpec.from_json(spec.to_json()) == spec


def test_encode_names_missing_columns() -> None:
    spec = fit_feature_spec(_rows(), hash_buckets_user=50, hash_buckets_item=50)
    with pytest.raises(StageError, match="item_price"):
        encode(_rows().drop("item_price"), spec)


def test_encode_standardizes_in_float64_and_rounds_once_to_float32_in_row_major_order() -> None:
    # The spec's statistics are float64: the value must be (x - mean) / std in float64,
    # rounded once, as the model saw it in training and the scorer sees it now.
    rng = np.random.default_rng(3)
    n = 2_000
    rows = pl.DataFrame(
        {
            "user_id": rng.integers(0, 50, n),
            "item_id": rng.integers(0, 50, n),
            "item_category_id": rng.integers(0, 5, n),
            "user_views_7d": rng.lognormal(3.0, 2.0, n),
            "item_price": rng.integers(1, 10**9, n),
            "item_on_sale": rng.random(n) < 0.5,
        }
    )
    spec = fit_feature_spec(rows, hash_buckets_user=50, hash_buckets_item=50)
    dense = encode(rows, spec)["dense"]
    raw = rows.select(pl.col(c).cast(pl.Float64) for c in spec.dense_columns).to_numpy()
    expected = ((raw - np.asarray(spec.dense_mean)) / np.asarray(spec.dense_std)).astype(np.float32)
    np.testing.assert_array_equal(dense, expected)
    # Batches are row slices: each row's features are contiguous, and torch may write.
    assert dense.flags["C_CONTIGUOUS"] and dense.flags["WRITEABLE"]
    assert dense.shape == (n, len(spec.dense_columns))


def _many_row_groups(tmp_path: Path) -> pl.LazyFrame:
    rng = np.random.default_rng(3)
    n = 40_000
    frame = pl.DataFrame(
        {
            "user_id": rng.integers(0, 500, n),
            "item_id": rng.integers(0, 300, n),
            "item_category_id": rng.integers(0, 9, n),
            "label": (rng.random(n) < 0.02).astype(np.int8),
            "user_views_7d": rng.gamma(0.7, 3.0, n),
            "item_price": rng.lognormal(3.0, 1.1, n),
            "item_conversion_rate": rng.beta(0.5, 40.0, n),
            "pair_hours_since_last": rng.exponential(90.0, n),
        }
    )
    frame.write_parquet(tmp_path / "train.parquet", row_group_size=1_000)
    return pl.scan_parquet(tmp_path / "train.parquet")


def test_feature_statistics_have_the_same_bits_on_every_fit_of_a_many_row_group_scan(
    tmp_path: Path,
) -> None:
    # Polars' parallel mean/std gave several different last bits over 10 fits of this scan.
    lazy = _many_row_groups(tmp_path)
    fits = {
        (spec.dense_mean, spec.dense_std)
        for spec in (
            fit_feature_spec(lazy, hash_buckets_user=50, hash_buckets_item=50) for _ in range(10)
        )
    }
    assert len(fits) == 1


def test_feature_statistics_are_numpys_over_non_null_values(tmp_path: Path) -> None:
    lazy = _many_row_groups(tmp_path).with_columns(
        pl.when(pl.col("user_id") % 7 == 0)
        .then(None)
        .otherwise(pl.col("user_views_7d"))
        .alias("user_views_7d"),
        pl.lit(2.5).alias("item_price"),  # constant: std 1
        pl.lit(None, dtype=pl.Float64).alias("item_conversion_rate"),  # all null: 0 and 1
    )
    spec = fit_feature_spec(lazy, hash_buckets_user=50, hash_buckets_item=50)
    frame = lazy.collect()
    views = frame["user_views_7d"].drop_nulls().to_numpy()
    hours = frame["pair_hours_since_last"].to_numpy()
    assert spec.dense_columns == (
        "user_views_7d", "item_price", "item_conversion_rate", "pair_hours_since_last"
    )  # fmt: skip
    assert spec.dense_mean == (np.mean(views), 2.5, 0.0, np.mean(hours))
    assert spec.dense_std == (np.std(views), 1.0, 1.0, np.std(hours))
