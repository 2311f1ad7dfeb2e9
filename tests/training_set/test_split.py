"""The time split: quantile boundaries that stray timestamps cannot move."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import SplitConfig
from longtail.errors import StageError
from longtail.training_set import assign_splits, plan_splits

pytestmark = pytest.mark.unit
BULK0 = dt.datetime(2015, 9, 1, tzinfo=dt.UTC)
# six days of labelled views, one every 10 minutes
BULK = [BULK0 + dt.timedelta(minutes=10 * i) for i in range(6 * 144)]
STRAYS = [
    dt.datetime(2015, 5, 3, 3, tzinfo=dt.UTC),
    dt.datetime(2015, 6, 20, tzinfo=dt.UTC),
    dt.datetime(2015, 8, 10, tzinfo=dt.UTC),
]


def _frame(times: list[dt.datetime]) -> pl.DataFrame:
    return pl.DataFrame({S.EVENT_TIME: pl.Series(times).dt.cast_time_unit("us")})


def test_stray_early_timestamps_move_no_boundary() -> None:
    cfg = SplitConfig()
    clean = plan_splits(_frame(BULK)[S.EVENT_TIME], cfg)
    dirty = plan_splits(_frame(STRAYS + BULK)[S.EVENT_TIME], cfg)
    # three rows among 867 move a quantile boundary by at most three rows (30 minutes)
    assert abs(dirty.test_start - clean.test_start) <= dt.timedelta(minutes=30)
    assert abs(dirty.validation_start - clean.validation_start) <= dt.timedelta(minutes=30)
    assert BULK0 + dt.timedelta(days=4) < dirty.validation_start < dirty.test_start
    out = assign_splits(_frame(STRAYS + BULK), cfg, plan=dirty)
    counts = dict(out.group_by(S.SPLIT).len().iter_rows())
    assert set(counts) == set(S.SPLITS)
    assert counts["test"] == pytest.approx(0.15 * out.height, abs=2)
    assert counts["validation"] == pytest.approx(0.15 * out.height, abs=2)
    strays = out.filter(pl.col(S.EVENT_TIME) < BULK0)
    assert strays[S.SPLIT].to_list() == ["train"] * 3


def test_the_range_cut_this_replaces_would_put_the_whole_bulk_in_test() -> None:
    # what fractions of the time range did: both boundaries in the empty months
    times = STRAYS + BULK
    span = times[-1] - times[0]
    test_start = times[-1] - span * 0.15
    val_start = test_start - span * 0.15
    assert val_start < test_start < BULK0
    assert len([t for t in times if val_start <= t < test_start]) <= 1


def test_the_plan_counts_the_rows_far_outside_the_bulk() -> None:
    late = [BULK[-1] + dt.timedelta(days=40)]
    plan = plan_splits(_frame(STRAYS + BULK + late)[S.EVENT_TIME], SplitConfig())
    assert (plan.rows_far_before, plan.rows_far_after) == (3, 1)
    assert plan.bulk_start.date() == dt.date(2015, 9, 1)
    outside = plan.to_dict()["outside_bulk"]
    assert outside["rows"] == 4
    clean = plan_splits(_frame(BULK)[S.EVENT_TIME], SplitConfig())
    assert clean.rows_far_outside == 0


def test_a_split_that_gets_no_rows_still_says_adjust_split() -> None:
    same = [BULK0] * 10
    with pytest.raises(StageError, match=r"adjust \[split\]"):
        assign_splits(_frame(same), SplitConfig())
