"""Test helpers of the resampling tests: the prior correction, a stratified cut."""

from __future__ import annotations

import polars as pl

from longtail.errors import StageError
from longtail.resampling.stratify import keep_mask, subsample_thresholds


def stratified_subsample(frame: pl.DataFrame, *, target_rows: int, seed: int) -> pl.DataFrame:
    """Cut ``frame`` to about ``target_rows`` rows keeping each (label, bucket) share.

    Parameters
    ----------
    frame
        Train rows with the key columns, ``label`` and ``item_popularity_bucket``.
    target_rows
        Rows wanted; the result has exactly this many unless rounding up the
        one-row minimum of tiny strata adds a few, or the frame is smaller.
    seed
        Seed of the row hash that picks the rows.

    Returns
    -------
    pl.DataFrame
        The kept rows, in input order.
    """
    if target_rows < 1:
        msg = f"target_rows must be >= 1. Got {target_rows!r} instead."
        raise StageError(msg)
    thresholds = subsample_thresholds(frame, target_rows=target_rows, seed=seed)
    return frame.filter(pl.Series(keep_mask(frame, thresholds, seed=seed)))
