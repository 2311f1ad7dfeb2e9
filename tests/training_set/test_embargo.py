"""The embargo on hand-built timelines: no label window crosses a split boundary."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import SplitConfig
from longtail.errors import StageError
from longtail.training_set import apply_embargo, assign_splits, label_views

pytestmark = pytest.mark.unit

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=72)
# Validation from day 10, test from day 16 (00:00 UTC).
SPLIT = SplitConfig(validation_start=dt.date(2024, 1, 11), test_start=dt.date(2024, 1, 17))


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


def _split_rows(rows: list[tuple[float, int, int, str]]) -> pl.DataFrame:
    labelled = label_views(
        _events(rows), target_event="purchase", horizon=H, cutoff=T0 + dt.timedelta(days=25)
    )
    return assign_splits(labelled, SPLIT)


def _timeline() -> list[tuple[float, int, int, str]]:
    day = 24.0
    return [
        (1 * day, 1, 1, "view"),  # train, far from the boundary: kept
        (1 * day + 5, 1, 1, "purchase"),
        (8.5 * day, 2, 2, "view"),  # train; its purchase falls in validation
        (10.2 * day, 2, 2, "purchase"),
        (9 * day, 3, 3, "view"),  # train negative whose window reaches validation
        (10.5 * day, 4, 4, "view"),  # validation, first row: the boundary in the data
        (12 * day, 5, 5, "view"),  # validation, kept
        (12 * day + 3, 5, 5, "purchase"),
        (14.5 * day, 6, 6, "view"),  # validation; purchase in test
        (16.5 * day, 6, 6, "purchase"),
        (16.2 * day, 7, 7, "view"),  # test: never embargoed
        (20 * day, 8, 8, "view"),
    ]


def test_a_positive_whose_purchase_falls_in_validation_never_trains() -> None:
    rows = _split_rows(_timeline())
    leaking = rows.filter((pl.col(S.USER_ID) == 2) & (pl.col(S.SPLIT) == "train"))
    assert leaking[S.LABEL].to_list() == [1]  # the leak is real before the embargo
    kept, stats = apply_embargo(rows, horizon=H, cfg=SPLIT)
    train = kept.filter(pl.col(S.SPLIT) == "train")
    assert sorted(train[S.USER_ID].to_list()) == [1]
    by_split = {s.split: s for s in stats}
    assert by_split["train"].rows_dropped == 2
    assert by_split["train"].positives_dropped == 1
    assert by_split["train"].next_start == T0 + dt.timedelta(days=10.5)


def test_validation_rows_whose_window_reaches_test_are_dropped_and_test_is_untouched() -> None:
    rows = _split_rows(_timeline())
    kept, stats = apply_embargo(rows, horizon=H, cfg=SPLIT)
    validation = kept.filter(pl.col(S.SPLIT) == "validation")
    assert sorted(validation[S.USER_ID].to_list()) == [4, 5]
    assert kept.filter(pl.col(S.SPLIT) == "test").height == 2
    by_split = {s.split: s for s in stats}
    assert (by_split["validation"].rows_dropped, by_split["validation"].positives_dropped) == (1, 1)
    # Every kept window ends before the next split's first row; the counts add up.
    for s in stats:
        part = kept.filter(pl.col(S.SPLIT) == s.split)
        assert s.next_start is not None
        assert (part[S.EVENT_TIME] + H < s.next_start).all()
        assert part.height == s.rows_before - s.rows_dropped
    assert kept.height == rows.height - sum(s.rows_dropped for s in stats)


def test_data_too_short_for_the_embargo_stops_with_the_days_needed() -> None:
    day = 24.0
    # Validation spans one day, shorter than the 72 h horizon: nothing survives.
    rows = [
        (1 * day, 1, 1, "view"),
        (10.2 * day, 2, 2, "view"),
        (10.8 * day, 3, 3, "view"),
        (11.5 * day, 4, 4, "view"),
    ]
    split = SplitConfig(validation_start=dt.date(2024, 1, 11), test_start=dt.date(2024, 1, 12))
    labelled = label_views(
        _events(rows), target_event="purchase", horizon=H, cutoff=T0 + dt.timedelta(days=25)
    )
    with pytest.raises(StageError, match=r"too short.*\['validation'\].*need at least \d+ days"):
        apply_embargo(assign_splits(labelled, split), horizon=H, cfg=split)
