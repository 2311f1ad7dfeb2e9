from __future__ import annotations

import polars as pl
import pytest

from longtail import schema as S
from longtail.errors import StageError
from longtail.validation import imbalance as M

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([1, 1, 1, 1], 0.0),  # uniform
        ([0, 0, 0, 1], 0.75),  # 2*4*1/(4*1) - 5/4
        ([1, 2, 3, 4], 0.25),  # 2*30/(4*10) - 5/4
        ([4, 3, 2, 1], 0.25),  # order of the input does not matter
        ([5], 0.0),
    ],
)
def test_gini_matches_hand_computed_values(counts: list[int], expected: float) -> None:
    assert M.gini(pl.Series(counts)) == pytest.approx(expected)


def test_gini_is_one_minus_twice_the_area_under_the_lorenz_curve() -> None:
    counts = pl.Series([0, 3, 1, 7, 2, 0, 12])
    curve = M.lorenz_curve(counts)
    x, y = curve["item_share"].to_list(), curve["event_share"].to_list()
    area = sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(len(x) - 1))
    assert M.gini(counts) == pytest.approx(1 - 2 * area)


def test_lorenz_curve_points_by_hand() -> None:
    curve = M.lorenz_curve(pl.Series([3, 0, 1]))
    assert curve["item_share"].to_list() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert curve["event_share"].to_list() == pytest.approx([0, 0, 0.25, 1])


def test_top_share_takes_the_ceiling_of_the_fraction_of_items() -> None:
    counts = pl.Series([1] * 99 + [101])  # 100 items, 200 events
    assert M.top_share(counts, fraction=0.01) == pytest.approx(101 / 200)
    assert M.top_share(counts, fraction=0.10) == pytest.approx(110 / 200)
    assert M.top_share(pl.Series([5, 5, 10]), fraction=0.01) == pytest.approx(0.5)


@pytest.mark.parametrize("counts", [[], [0, 0], [1, -1]])
def test_degenerate_counts_are_refused_with_a_reason(counts: list[int]) -> None:
    with pytest.raises(StageError, match="count"):
        M.gini(pl.Series(counts, dtype=pl.Int64))


def test_item_popularity_gives_zero_to_catalogue_items_without_events() -> None:
    events = pl.DataFrame({S.ITEM_ID: [1, 1, 2]})
    pop = M.item_popularity(events, catalogue=pl.Series([1, 2, 3, 3]))
    assert pop.rows() == [(1, 2), (2, 1), (3, 0)]


def test_popularity_buckets_by_cumulative_share() -> None:
    pop = pl.DataFrame({S.ITEM_ID: [1, 2, 3, 4], "events": [50, 30, 15, 5]})
    buckets = M.popularity_buckets(pop, head_share=0.5, torso_share=0.8)
    # shares before each item: 0, .5, .8, .95
    assert buckets[S.POPULARITY_BUCKET].to_list() == ["head", "torso", "tail", "tail"]


def test_event_label_rate_by_pools_categories_outside_the_top_n() -> None:
    events = pl.DataFrame(
        {
            S.EVENT_TYPE: ["view"] * 6 + ["view"] * 3 + ["view"] + ["purchase"] * 2,
            S.CATEGORY_ID: [1] * 6 + [2] * 3 + [3] + [1, 3],
        }
    )
    out = M.event_label_rate_by(events, by=S.CATEGORY_ID, top=1)
    assert out.rows() == [("1", 6, 1, 1 / 6), (M.OTHER, 4, 1, 0.25)]
    assert M.event_label_rate(events) == pytest.approx(2 / 10)


def test_training_label_rate_by_bucket_and_users_without_positive() -> None:
    rows = pl.DataFrame(
        {
            S.USER_ID: [1, 1, 2, 3, 3],
            S.LABEL: [0, 1, 0, 0, 0],
            S.POPULARITY_BUCKET: ["head", "tail", "tail", "head", "head"],
        }
    )
    out = M.training_label_rate_by(rows, by=S.POPULARITY_BUCKET)
    assert out.rows() == [("head", 3, 0, 0.0), ("tail", 2, 1, 0.5)]
    assert M.users_without_positive(rows, positive=pl.col(S.LABEL) == 1) == (2, 3)
