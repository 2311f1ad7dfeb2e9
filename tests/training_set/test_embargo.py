"""The embargo on hand-built timelines: no label window crosses a split boundary."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import SplitConfig
from longtail.errors import StageError
from longtail.training_set import apply_embargo, assign_splits, label_views
from longtail.training_set.embargo import embargo_mode
from longtail.training_set.split import SplitPlan

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


TRUNCATE = SPLIT.model_copy(update={"embargo": "truncate"})


def test_truncate_keeps_every_row_and_cuts_label_windows_at_the_next_split() -> None:
    rows = _split_rows(_timeline())
    kept, stats = apply_embargo(rows, horizon=H, cfg=TRUNCATE)
    assert kept.height == rows.height
    assert S.LABEL_TIME not in kept.columns
    label = dict(zip(kept[S.USER_ID].to_list(), kept[S.LABEL].to_list(), strict=True))
    # user 2's purchase (day 10.2) comes before validation's first row (day 10.5): it
    # stays; user 6's (day 16.5) comes after test's first row (day 16.2): it is cut.
    assert (label[2], label[6]) == (1, 0)
    assert (label[1], label[5]) == (1, 1)
    by_split = {s.split: s for s in stats}
    assert {s.mode for s in stats} == {"truncate"}
    assert (by_split["train"].rows_cut, by_split["train"].positives_dropped) == (2, 0)
    assert (by_split["validation"].rows_cut, by_split["validation"].positives_dropped) == (1, 1)
    assert all(s.rows_dropped == 0 for s in stats)


def test_no_kept_positive_of_a_truncated_split_was_bought_at_or_after_the_next_start() -> None:
    rows = _split_rows(_timeline())
    kept, stats = apply_embargo(rows, horizon=H, cfg=TRUNCATE)
    when = rows.select(S.USER_ID, S.ITEM_ID, S.EVENT_TIME, S.LABEL_TIME)
    positives = kept.filter(pl.col(S.LABEL) == 1).join(
        when, on=[S.USER_ID, S.ITEM_ID, S.EVENT_TIME]
    )
    for s in stats:
        assert s.next_start is not None
        part = positives.filter(pl.col(S.SPLIT) == s.split)
        assert (part[S.LABEL_TIME] < s.next_start).all()


def _plan(train_days: float, validation_days: float) -> SplitPlan:
    start = T0
    val = start + dt.timedelta(days=train_days)
    test = val + dt.timedelta(days=validation_days)
    return SplitPlan(val, test, start, test + dt.timedelta(days=2), 0, 0)


def test_auto_drops_when_both_splits_last_long_enough_and_truncates_otherwise() -> None:
    auto = SplitConfig()
    assert auto.embargo == "auto"
    assert embargo_mode(auto, horizon=H, plan=_plan(30, 6)) == "drop"
    assert embargo_mode(auto, horizon=H, plan=_plan(30, 4)) == "truncate"  # 4 d < 1.5 x 72 h
    assert embargo_mode(auto, horizon=H, plan=_plan(4, 30)) == "truncate"
    assert embargo_mode(SplitConfig(embargo="drop"), horizon=H, plan=_plan(4, 4)) == "drop"
    assert embargo_mode(TRUNCATE, horizon=H, plan=_plan(30, 30)) == "truncate"


def test_explicit_drop_on_data_too_short_still_stops_with_the_days_needed() -> None:
    day = 24.0
    rows = [(1 * day, 1, 1, "view"), (10.2 * day, 2, 2, "view"), (11.5 * day, 4, 4, "view")]
    split = SplitConfig(
        validation_start=dt.date(2024, 1, 11), test_start=dt.date(2024, 1, 12), embargo="drop"
    )
    labelled = label_views(
        _events(rows), target_event="purchase", horizon=H, cutoff=T0 + dt.timedelta(days=25)
    )
    plan = _plan(10, 1)
    with pytest.raises(StageError, match=r"too short.*embargo = \"truncate\""):
        apply_embargo(assign_splits(labelled, split), horizon=H, cfg=split, plan=plan)
    # the same rows with the windows cut: every split keeps its rows
    cut = split.model_copy(update={"embargo": "truncate"})
    kept, _ = apply_embargo(assign_splits(labelled, cut), horizon=H, cfg=cut, plan=plan)
    assert kept.height == labelled.height
