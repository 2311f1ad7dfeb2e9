from __future__ import annotations

import polars as pl
import pytest

from longtail import schema as S
from longtail.errors import StageError

pytestmark = pytest.mark.unit


def test_conform_orders_columns_and_drops_extras() -> None:
    frame = pl.DataFrame({"parent_id": [None, 1], "category_id": [1, 2], "x": [0, 0]})
    out = S.conform(frame, S.CATEGORIES, table="categories")
    assert out.columns == ["category_id", "parent_id"]
    assert out.schema["parent_id"] == pl.Int64


def test_conform_names_the_missing_column() -> None:
    with pytest.raises(StageError, match=r"lacks column\(s\) \['parent_id'\]"):
        S.conform(pl.DataFrame({"category_id": [1]}), S.CATEGORIES, table="categories")


def test_conform_names_the_column_with_a_wrong_dtype() -> None:
    frame = pl.DataFrame({"category_id": ["a"], "parent_id": [1]})
    with pytest.raises(StageError, match="'category_id' has dtype String"):
        S.conform(frame, S.CATEGORIES, table="categories")


def test_event_times_are_utc_microseconds() -> None:
    assert S.EVENTS[S.EVENT_TIME] == pl.Datetime("us", "UTC")


def test_dense_feature_columns_skip_keys_and_categoricals() -> None:
    frame = pl.DataFrame(
        {
            "user_id": [1],
            "item_id": [2],
            "label": [0],
            "item_category_id": [3],
            "item_popularity_bucket": ["tail"],
            "user_views_7d": [1.0],
            "item_price": [2.5],
            "other": [1.0],
        }
    )
    assert S.dense_feature_columns(frame) == ["user_views_7d", "item_price"]
