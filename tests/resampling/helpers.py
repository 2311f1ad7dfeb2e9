"""Test helpers of the resampling tests: the prior correction by hand, a stratified cut."""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from longtail.errors import StageError
from longtail.resampling.stratify import keep_mask, subsample_thresholds


def correct_probabilities(p: ArrayLike, offset: ArrayLike) -> NDArray[np.float64]:
    """Undo a prior shift: ``sigmoid(logit(p) - offset)``, stable at 0 and 1.

    Parameters
    ----------
    p
        Probabilities predicted by a model trained on resampled rows, in [0, 1].
    offset
        ``log(rate_1 / rate_0)`` per row (or one scalar), from :class:`SamplingReport`.

    Returns
    -------
    numpy.ndarray
        Probabilities under the true (not resampled) class prior.

    Raises
    ------
    ValueError
        A probability is outside [0, 1] or NaN.
    """
    prob = np.asarray(p, dtype=np.float64)
    off = np.asarray(offset, dtype=np.float64)
    if np.any(~((prob >= 0) & (prob <= 1))):
        bad = prob[~((prob >= 0) & (prob <= 1))][:5]
        msg = f"probabilities must lie in [0, 1]. Got {bad.tolist()!r} instead."
        raise ValueError(msg)
    out: NDArray[np.float64] = prob / (prob + (1.0 - prob) * np.exp(off))
    return out


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
