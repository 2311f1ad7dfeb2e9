"""Split labelled rows by time into train / validation / test."""

from __future__ import annotations

import datetime as dt

import polars as pl

from longtail import schema as S
from longtail.config import SplitConfig
from longtail.errors import StageError

__all__ = ["assign_splits", "split_boundaries"]


def _at_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def split_boundaries(
    first: dt.datetime, last: dt.datetime, cfg: SplitConfig
) -> tuple[dt.datetime, dt.datetime]:
    """Return ``(validation_start, test_start)``.

    Configured dates win (00:00 UTC); otherwise the boundaries cut the range
    ``[first, last]`` so that the last ``test_fraction`` of it is test and the
    ``validation_fraction`` before it is validation.

    Raises
    ------
    StageError
        The validation start is not before the test start.
    """
    span = last - first
    test_start = (
        _at_midnight(cfg.test_start)
        if cfg.test_start is not None
        else last - span * cfg.test_fraction
    )
    val_start = (
        _at_midnight(cfg.validation_start)
        if cfg.validation_start is not None
        else test_start - span * cfg.validation_fraction
    )
    if not val_start < test_start:
        msg = (
            f"split.validation_start must be before split.test_start. "
            f"Got {val_start.isoformat()} and {test_start.isoformat()} instead."
        )
        raise StageError(msg)
    return val_start, test_start


def assign_splits(frame: pl.DataFrame, cfg: SplitConfig) -> pl.DataFrame:
    """Add the ``split`` column: train before validation start, test from test start.

    Raises
    ------
    StageError
        ``frame`` is empty, or a split gets no rows.
    """
    if frame.is_empty():
        msg = "no labelled rows to split (is the data shorter than the label horizon?)"
        raise StageError(msg)
    first, last = frame[S.EVENT_TIME].min(), frame[S.EVENT_TIME].max()
    if not isinstance(first, dt.datetime) or not isinstance(last, dt.datetime):
        msg = f"column {S.EVENT_TIME!r} must be a datetime"
        raise StageError(msg)
    val_start, test_start = split_boundaries(first, last, cfg)
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
        msg = (
            f"split(s) {empty} get no rows with validation from {val_start.isoformat()} and "
            f"test from {test_start.isoformat()} (rows span {first.isoformat()} to "
            f"{last.isoformat()}); adjust [split]"
        )
        raise StageError(msg)
    return out
