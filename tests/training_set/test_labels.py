"""Labels on hand-made timelines, and the time split."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import SplitConfig
from longtail.errors import StageError
from longtail.training_set import assign_splits, label_views, split_boundaries

pytestmark = pytest.mark.unit

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=72)
CUTOFF = T0 + dt.timedelta(days=10)


def _events(rows: list[tuple[float, int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            S.EVENT_TIME: [T0 + dt.timedelta(hours=h) for h, *_ in rows],
            S.USER_ID: [u for _, u, _, _ in rows],
            S.ITEM_ID: [i for _, _, i, _ in rows],
            S.EVENT_TYPE: [e for *_, e in rows],
            S.TRANSACTION_ID: [None] * len(rows),
        },
        schema=S.EVENTS,
    )


def _labels(rows: list[tuple[float, int, int, str]], target: str = "purchase") -> list[int]:
    out = label_views(_events(rows), target_event=target, horizon=H, cutoff=CUTOFF)
    return out[S.LABEL].to_list()


def test_a_purchase_within_the_horizon_after_the_view_makes_it_positive() -> None:
    assert _labels([(0, 1, 10, "view"), (5, 1, 10, "purchase")]) == [1]


def test_a_purchase_exactly_at_the_horizon_counts_and_one_just_after_does_not() -> None:
    assert _labels([(0, 1, 10, "view"), (72, 1, 10, "purchase")]) == [1]
    assert _labels([(0, 1, 10, "view"), (72.001, 1, 10, "purchase")]) == [0]


def test_a_purchase_before_or_at_the_view_time_does_not_count() -> None:
    assert _labels([(1, 1, 10, "purchase"), (1, 1, 10, "view"), (2, 1, 10, "view")]) == [0, 0]


def test_another_users_or_another_items_purchase_does_not_count() -> None:
    rows = [(0, 1, 10, "view"), (1, 2, 10, "purchase"), (1, 1, 11, "purchase")]
    assert _labels(rows) == [0]


def test_a_later_purchase_labels_every_earlier_view_in_its_horizon() -> None:
    rows = [(0, 1, 10, "view"), (50, 1, 10, "view"), (100, 1, 10, "purchase")]
    assert _labels(rows) == [0, 1]


def test_cart_is_the_target_when_configured() -> None:
    rows = [(0, 1, 10, "view"), (3, 1, 10, "cart")]
    assert _labels(rows, "cart") == [1]
    assert _labels(rows, "purchase") == [0]


def test_views_whose_horizon_reaches_the_cutoff_are_left_out() -> None:
    late = (CUTOFF - T0 - H).total_seconds() / 3600  # t + h == cutoff
    out = _labels([(0, 1, 10, "view"), (late, 1, 10, "view"), (late - 1, 1, 10, "view")])
    assert len(out) == 2


def test_view_as_target_is_refused() -> None:
    with pytest.raises(StageError, match="target_event"):
        label_views(_events([]), target_event="view", horizon=H, cutoff=CUTOFF)


def test_fraction_split_is_in_time_order_with_the_configured_shares() -> None:
    frame = pl.DataFrame({S.EVENT_TIME: [T0 + dt.timedelta(hours=h) for h in range(100)]})
    out = assign_splits(frame, SplitConfig(validation_fraction=0.2, test_fraction=0.1))
    counts = dict(out.group_by(S.SPLIT).len().iter_rows())
    assert counts == {"train": 70, "validation": 20, "test": 10}
    order = out[S.SPLIT].to_list()
    assert order == sorted(order, key=["train", "validation", "test"].index)


def test_configured_dates_win_over_fractions_and_must_be_ordered() -> None:
    times = pl.Series(S.EVENT_TIME, [T0 + dt.timedelta(hours=h) for h in range(0, 24 * 30, 6)])
    val, test = split_boundaries(
        times,
        SplitConfig(validation_start=dt.date(2024, 1, 10), test_start=dt.date(2024, 1, 20)),
    )
    assert (val, test) == (T0 + dt.timedelta(days=9), T0 + dt.timedelta(days=19))
    with pytest.raises(StageError, match=r"before split\.test_start"):
        split_boundaries(
            times,
            SplitConfig(validation_start=dt.date(2024, 1, 20), test_start=dt.date(2024, 1, 10)),
        )
