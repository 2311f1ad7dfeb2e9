"""Split labelled rows by time into train / validation / test.

Default boundaries are quantiles of the labelled rows' times: the last
``test_fraction`` of the rows (in time order) are test and the
``validation_fraction`` before them validation. A handful of stray timestamps
weeks before the bulk of the data therefore moves nothing (a cut by fraction of
the time *range* would put every boundary in the empty weeks between them and
the bulk). The plan also counts the rows that lie far outside the bulk, so the
summary says when there are any.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from longtail import schema as S
from longtail.config import SplitConfig
from longtail.errors import StageError

__all__ = ["SplitPlan", "assign_splits", "plan_splits", "split_boundaries"]

# The bulk is the time range of the middle 98% of rows; a row is far outside it
# when it lies more than the bulk's own length (at least a day) beyond it.
_BULK_QUANTILES: Final = (0.01, 0.99)
_MIN_MARGIN: Final = dt.timedelta(days=1)


@dataclass(frozen=True)
class SplitPlan:
    """Where the splits start, and how many rows lie far outside the bulk of the data."""

    validation_start: dt.datetime
    test_start: dt.datetime
    bulk_start: dt.datetime
    bulk_end: dt.datetime
    rows_far_before: int
    rows_far_after: int

    @property
    def rows_far_outside(self) -> int:
        """Rows far before or far after the bulk."""
        return self.rows_far_before + self.rows_far_after

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``training_set_summary.json``."""
        return {
            "validation_start": self.validation_start.isoformat(),
            "test_start": self.test_start.isoformat(),
            "outside_bulk": {
                "rows": self.rows_far_outside,
                "far_before": self.rows_far_before,
                "far_after": self.rows_far_after,
                "bulk_start": self.bulk_start.isoformat(),
                "bulk_end": self.bulk_end.isoformat(),
            },
        }


def _at_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _as_datetime(value: object, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        msg = f"column {S.EVENT_TIME!r} must be a datetime (no {what})"
        raise StageError(msg)
    return value


def split_boundaries(times: pl.Series, cfg: SplitConfig) -> tuple[dt.datetime, dt.datetime]:
    """Return ``(validation_start, test_start)`` for rows at ``times``.

    Configured dates win (00:00 UTC). Otherwise ``test_start`` is the time of
    the first row of the last ``test_fraction`` of the rows in time order, and
    ``validation_start`` that of the first of the ``validation_fraction`` before
    them (each at least one row). Rows at a boundary's time go to the later
    split.

    Raises
    ------
    StageError
        ``times`` is empty, or the validation start is not before the test start.
    """
    if times.is_empty():
        msg = "no labelled rows to split"
        raise StageError(msg)
    ordered = times.drop_nulls().sort()
    n = ordered.len()
    if cfg.test_start is not None:
        test_start = _at_midnight(cfg.test_start)
        # validation is then the fraction of rows just before the configured test start
        i_test = int((ordered < test_start).sum())
    else:
        i_test = max(0, n - max(1, math.ceil(n * cfg.test_fraction)))
        test_start = _as_datetime(ordered[i_test], "test start")
    i_val = min(n - 1, max(0, i_test - max(1, math.ceil(n * cfg.validation_fraction))))
    val_start = (
        _at_midnight(cfg.validation_start)
        if cfg.validation_start is not None
        else _as_datetime(ordered[i_val], "validation start")
    )
    if not val_start < test_start:
        msg = (
            f"split.validation_start must be before split.test_start. "
            f"Got {val_start.isoformat()} and {test_start.isoformat()} instead "
            f"({n:,} rows from {_as_datetime(ordered[0], 'first').isoformat()} to "
            f"{_as_datetime(ordered[-1], 'last').isoformat()}); adjust [split]"
        )
        raise StageError(msg)
    return val_start, test_start


def plan_splits(times: pl.Series, cfg: SplitConfig) -> SplitPlan:
    """Boundaries of :func:`split_boundaries` plus the count of rows far outside the bulk.

    Raises
    ------
    StageError
        As :func:`split_boundaries`.
    """
    val_start, test_start = split_boundaries(times, cfg)
    lo = _as_datetime(times.quantile(_BULK_QUANTILES[0], "lower"), "bulk start")
    hi = _as_datetime(times.quantile(_BULK_QUANTILES[1], "higher"), "bulk end")
    margin = max(hi - lo, _MIN_MARGIN)
    far_before = int((times < lo - margin).sum())
    far_after = int((times > hi + margin).sum())
    return SplitPlan(
        validation_start=val_start,
        test_start=test_start,
        bulk_start=lo,
        bulk_end=hi,
        rows_far_before=far_before,
        rows_far_after=far_after,
    )


def assign_splits(
    frame: pl.DataFrame, cfg: SplitConfig, *, plan: SplitPlan | None = None
) -> pl.DataFrame:
    """Add the ``split`` column: train before validation start, test from test start.

    Parameters
    ----------
    frame
        Labelled rows with ``event_time``.
    cfg
        Fractions or dates of the split.
    plan
        Boundaries already planned for ``frame`` (see :func:`plan_splits`).

    Raises
    ------
    StageError
        ``frame`` is empty, or a split gets no rows.
    """
    if frame.is_empty():
        msg = "no labelled rows to split (is the data shorter than the label horizon?)"
        raise StageError(msg)
    times = frame.get_column(S.EVENT_TIME)
    if not isinstance(times.dtype, pl.Datetime):
        msg = f"column {S.EVENT_TIME!r} must be a datetime"
        raise StageError(msg)
    if plan is None:
        val_start, test_start = split_boundaries(times, cfg)
    else:
        val_start, test_start = plan.validation_start, plan.test_start
    t = pl.col(S.EVENT_TIME)
    out = frame.with_columns(
        pl.when(t < val_start)
        .then(pl.lit("train"))
        .when(t < test_start)
        .then(pl.lit("validation"))
        .otherwise(pl.lit("test"))
        .alias(S.SPLIT)
    )
    counts = dict(out.group_by(S.SPLIT).len().iter_rows())
    empty = [s for s in S.SPLITS if not counts.get(s)]
    if empty:
        first, last = _as_datetime(times.min(), "first"), _as_datetime(times.max(), "last")
        msg = (
            f"split(s) {empty} get no rows with validation from {val_start.isoformat()} and "
            f"test from {test_start.isoformat()} (rows span {first.isoformat()} to "
            f"{last.isoformat()}); adjust [split]"
        )
        raise StageError(msg)
    return out
