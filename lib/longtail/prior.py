"""The prior correction, in one place: undo what resampling did to the class prior.

Resampling a stratum scales its class counts by the rates ``r_c = after_c / before_c``
and (approximately) keeps ``p(x | y)``, so by Bayes a model trained on the resampled
rows predicts ``logit(p_true) + offset`` with ``offset = log(r_1 / r_0)``. The
correction subtracts the row's offset (picked by its stratum value) from the logit.
The sampling report writes the offsets (:mod:`longtail.resampling.report`) and the
model's calibration applies them (:mod:`longtail.models.calibration`); both look the
offsets up with :func:`row_offsets`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

__all__ = ["FALLBACK", "Groups", "correct_probabilities", "row_offsets", "with_fallback"]

#: Offset key of rows whose stratum value has no offset of its own (and of one-offset reports).
FALLBACK = "*"
#: The rows' stratum values: numpy array, Polars Series, or None for the fallback offset.
Groups = np.ndarray | pl.Series | None


def row_offsets(
    groups: Groups, offsets: Mapping[str, float], *, fallback: float, n: int
) -> NDArray[np.float64]:
    """One log-odds offset per row, looked up by the row's stratum value.

    Keys are the stratum values as the sampling report writes them: strings, a
    null as ``"null"``; a value without an offset (or ``groups`` None) gets
    ``fallback``. Integer ids with nulls arrive through numpy as floats and are
    read back as integers.
    """
    if groups is None:
        return np.full(n, fallback, dtype=np.float64)
    # Vectorized lookup: a Python dict lookup per row costs ~2 s per 10M rows.
    raw = groups if isinstance(groups, pl.Series) else pl.Series(np.asarray(groups))
    if raw.dtype.is_float():
        raw = raw.fill_nan(None).cast(pl.Int64, strict=False)
    keys = raw.cast(pl.String, strict=False).fill_null("null")
    known = {k: float(v) for k, v in offsets.items()}
    looked = keys.replace_strict(known, default=fallback, return_dtype=pl.Float64)
    return looked.fill_null(fallback).to_numpy().astype(np.float64, copy=False)


def with_fallback(offsets: Mapping[str, float]) -> dict[str, float]:
    """The offsets with a :data:`FALLBACK` entry: kept when there, else the mean of the others.

    The mean is what a saved model applies to a row of a stratum value it never
    saw (an item of a category that did not exist at training time); no offsets
    at all is no correction (0).
    """
    out = {str(k): float(v) for k, v in offsets.items()}
    if not out:
        return {FALLBACK: 0.0}
    if FALLBACK not in out:
        out[FALLBACK] = float(np.mean(list(out.values())))
    return out


def correct_probabilities(p: ArrayLike, offset: ArrayLike) -> NDArray[np.float64]:
    """Undo a prior shift on probabilities: ``sigmoid(logit(p) - offset)``, stable at 0 and 1.

    Parameters
    ----------
    p
        Probabilities predicted by a model trained on resampled rows, in [0, 1].
    offset
        ``log(rate_1 / rate_0)`` per row (or one scalar), from the sampling report.

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
