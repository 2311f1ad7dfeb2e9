"""Probability-quality metrics over a frame of labels and scores, overall and per bucket.

At a 2-4% base rate most probabilities sit near zero, so calibration is measured
on equal-mass (quantile) bins by default: equal-width bins put most rows in the
first bin and say nothing about the rest. Absolute numbers are small at a small
base rate whatever the model, so the skill scores compare against the
base-rate predictor (the constant ``mean(label)`` of the same rows): a skill
of 0 is no better than it, and ``relative_ece`` is the ECE in units of the
base rate (a constant 0 predictor scores 1.0).

ROC-AUC and average precision come from one sort of the scores (:func:`ranked_aucs`)
and log loss and Brier are plain numpy: scikit-learn's functions sort once each and
validate their input on every call: 229 against 40 ms a scope on the train step's
415k test rows (``benchmarks/classification_metrics.py``), and the train step's evaluation
went from 1.0 to 0.5 s (``benchmarks/train_phases.py``). The definitions are
scikit-learn's (tied scores are one threshold), and the tests hold every value to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import polars as pl

from longtail.metrics._checks import binary_arrays, require
from longtail.schema import BUCKETS, LABEL, POPULARITY_BUCKET, PROBABILITY

__all__ = [
    "BinStrategy",
    "brier",
    "brier_skill",
    "classification_report",
    "ece",
    "ece_by_scope",
    "log_loss",
    "log_loss_skill",
    "pr_auc",
    "ranked_aucs",
    "relative_ece",
    "reliability_bins",
    "roc_auc",
]

BinStrategy = Literal["quantile", "uniform"]

SCORE = PROBABILITY
_EPS = 1e-7


def roc_auc(frame: pl.DataFrame, *, label: str = LABEL, score: str = SCORE) -> float:
    """Area under the ROC curve; NaN when only one class is present.

    Raises
    ------
    StageError
        A column is missing, not numeric, null, or the label is not 0/1.
    """
    return ranked_aucs(*binary_arrays(frame, label=label, score=score))[0]


def pr_auc(frame: pl.DataFrame, *, label: str = LABEL, score: str = SCORE) -> float:
    """Area under the precision-recall curve (average precision); NaN without positives."""
    return ranked_aucs(*binary_arrays(frame, label=label, score=score))[1]


def ranked_aucs(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """ROC-AUC and average precision of scores ``s`` for 0/1 labels ``y``, from one sort.

    The curves of scikit-learn's ``roc_auc_score`` and ``average_precision_score``:
    a threshold at each distinct score, highest first, tied scores one threshold.

    Parameters
    ----------
    y
        Labels, 0.0 or 1.0 (float64).
    s
        Finite scores of the same length (probabilities or logits: only their order counts).

    Returns
    -------
    tuple of float
        ``(roc_auc, average_precision)``; ROC-AUC is NaN with one class present,
        average precision NaN without positives.
    """
    if y.size == 0 or y.max() == 0:
        return float("nan"), float("nan")
    # Within a run of tied scores the order does not matter: only the run's end counts.
    order = np.argsort(s)[::-1]
    ranked = s[order]
    ends = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), ranked.size - 1]
    tps = np.cumsum(y[order])[ends]
    fps = (ends + 1) - tps
    positives, negatives = tps[-1], fps[-1]
    ap = float(np.sum(np.diff(tps, prepend=0.0) * (tps / (tps + fps))) / positives)
    if negatives == 0:
        return float("nan"), ap
    roc = np.trapezoid(np.r_[0.0, tps] / positives, np.r_[0.0, fps] / negatives)
    return float(roc), ap


def log_loss(frame: pl.DataFrame, *, label: str = LABEL, score: str = SCORE) -> float:
    """Mean negative log-likelihood of probabilities, clipped to [1e-7, 1 - 1e-7]."""
    return _log_loss(*binary_arrays(frame, label=label, score=score))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    if y.size == 0:
        return float("nan")
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(frame: pl.DataFrame, *, label: str = LABEL, score: str = SCORE) -> float:
    """Mean squared error between probability and label."""
    return _brier(*binary_arrays(frame, label=label, score=score))


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    if y.size == 0:
        return float("nan")
    return float(np.mean((p - y) ** 2))


def _base_rate(y: np.ndarray) -> float:
    return float(np.mean(y)) if y.size else float("nan")


def log_loss_skill(frame: pl.DataFrame, *, label: str = LABEL, score: str = SCORE) -> float:
    """``1 - log_loss / log_loss(base rate)``: 0 for the base-rate predictor, 1 for a perfect one.

    NaN when the rows hold one class only (the base-rate predictor is then perfect).
    """
    y, p = binary_arrays(frame, label=label, score=score)
    return _log_loss_skill(y, _log_loss(y, p))


def _log_loss_skill(y: np.ndarray, loss: float) -> float:
    rate = _base_rate(y)
    if not 0.0 < rate < 1.0:
        return float("nan")
    reference = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    return float(1.0 - loss / reference)


def brier_skill(frame: pl.DataFrame, *, label: str = LABEL, score: str = SCORE) -> float:
    """``1 - brier / (rate * (1 - rate))``, the base-rate predictor's Brier; NaN for one class."""
    y, p = binary_arrays(frame, label=label, score=score)
    return _brier_skill(y, _brier(y, p))


def _brier_skill(y: np.ndarray, value: float) -> float:
    rate = _base_rate(y)
    if not 0.0 < rate < 1.0:
        return float("nan")
    return float(1.0 - value / (rate * (1 - rate)))


def _bin_index(p: np.ndarray, n_bins: int, strategy: BinStrategy) -> np.ndarray:
    if strategy == "uniform":
        out: np.ndarray = np.minimum((np.clip(p, 0.0, 1.0) * n_bins).astype(np.int64), n_bins - 1)
        return out
    if strategy != "quantile":
        msg = f"strategy must be 'quantile' or 'uniform'. Got {strategy!r} instead."
        raise ValueError(msg)
    if p.size == 0:
        return np.zeros(0, dtype=np.int64)
    # Equal-mass edges; tied probabilities stay in one bin (so a constant has one bin).
    edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1))[1:-1])
    return np.searchsorted(edges, p, side="right").astype(np.int64)


def reliability_bins(
    frame: pl.DataFrame,
    *,
    label: str = LABEL,
    score: str = SCORE,
    n_bins: int = 15,
    strategy: BinStrategy = "quantile",
) -> pl.DataFrame:
    """Reliability bins of the probability: equal-mass (``"quantile"``) or equal-width.

    Returns
    -------
    pl.DataFrame
        One row per non-empty bin: ``bin``, ``lower``, ``upper`` (the lowest and
        highest probability in the bin for quantile bins, the bin's edges for
        uniform ones), ``count``, ``mean_probability``, ``positive_rate``.
    """
    _check_bins(n_bins)
    y, p = binary_arrays(frame, label=label, score=score)
    return _reliability_bins(y, p, n_bins, strategy)


def _check_bins(n_bins: int) -> None:
    if n_bins < 1:
        msg = f"n_bins must be >= 1. Got {n_bins!r} instead."
        raise ValueError(msg)


def _reliability_bins(
    y: np.ndarray, p: np.ndarray, n_bins: int, strategy: BinStrategy
) -> pl.DataFrame:
    idx = _bin_index(p, n_bins, strategy)
    if strategy == "uniform":
        lower = (pl.col("bin") / n_bins).alias("lower")
        upper = ((pl.col("bin") + 1) / n_bins).alias("upper")
    else:
        lower, upper = pl.col("p").min().alias("lower"), pl.col("p").max().alias("upper")
    return (
        pl.DataFrame({"bin": idx, "p": p, "y": y})
        .group_by("bin")
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("p").mean().alias("mean_probability"),
            pl.col("y").mean().alias("positive_rate"),
            *([] if strategy == "uniform" else [lower, upper]),
        )
        .with_columns(*([lower, upper] if strategy == "uniform" else []))
        .select("bin", "lower", "upper", "count", "mean_probability", "positive_rate")
        .sort("bin")
    )


def ece(
    frame: pl.DataFrame,
    *,
    label: str = LABEL,
    score: str = SCORE,
    n_bins: int = 15,
    strategy: BinStrategy = "quantile",
) -> float:
    """Return the expected calibration error: count-weighted mean |positive rate - probability|.

    Bins are equal-mass by default (see :func:`reliability_bins`).
    """
    _check_bins(n_bins)
    return _ece(*binary_arrays(frame, label=label, score=score), n_bins, strategy)


def _ece(
    y: np.ndarray, p: np.ndarray, n_bins: int = 15, strategy: BinStrategy = "quantile"
) -> float:
    bins = _reliability_bins(y, p, n_bins, strategy)
    total = int(bins["count"].sum())
    if total == 0:
        return float("nan")
    gap = (bins["positive_rate"] - bins["mean_probability"]).abs() * bins["count"]
    return float(gap.sum() / total)


def relative_ece(
    frame: pl.DataFrame,
    *,
    label: str = LABEL,
    score: str = SCORE,
    n_bins: int = 15,
    strategy: BinStrategy = "quantile",
) -> float:
    """ECE divided by the base rate (NaN without positives); a constant 0 scores 1.0."""
    _check_bins(n_bins)
    y, p = binary_arrays(frame, label=label, score=score)
    return _relative_ece(y, _ece(y, p, n_bins, strategy))


def _relative_ece(y: np.ndarray, value: float) -> float:
    rate = _base_rate(y)
    if not rate > 0:
        return float("nan")
    return value / rate


#: A metric of this module: ``fn(frame, *, label=..., score=...) -> float``.
Metric = Callable[..., float]


def _scope_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every metric of the report from one pair of arrays, each base value once."""
    loss, squared, calibration = _log_loss(y, p), _brier(y, p), _ece(y, p)
    roc, ap = ranked_aucs(y, p)
    return {
        "roc_auc": roc,
        "pr_auc": ap,
        "log_loss": loss,
        "brier": squared,
        "ece": calibration,
        "relative_ece": _relative_ece(y, calibration),
        "log_loss_skill": _log_loss_skill(y, loss),
        "brier_skill": _brier_skill(y, squared),
    }


def _bucket_masks(frame: pl.DataFrame, bucket: str | None) -> list[tuple[str, np.ndarray | None]]:
    """``("all", None)`` and, per popularity bucket present in ``frame``, its row mask.

    In :data:`~longtail.schema.BUCKETS` order; rows with a null bucket count only in
    ``"all"``.
    """
    scopes: list[tuple[str, np.ndarray | None]] = [("all", None)]
    if bucket is None or bucket not in frame.columns:
        return scopes
    column = frame[bucket]
    present = set(column.drop_nulls().unique().to_list())
    for b in BUCKETS:
        if b in present:
            scopes.append((b, (column == b).fill_null(False).to_numpy()))
    return scopes


def classification_report(
    frame: pl.DataFrame,
    *,
    label: str = LABEL,
    score: str = SCORE,
    bucket: str | None = POPULARITY_BUCKET,
) -> pl.DataFrame:
    """All probability metrics overall and per bucket, one row per scope.

    The labels and scores are read once and each scope is a mask over them (a
    filter of the whole frame per bucket, with its list columns, was half the
    report's time on the train step's 415k test rows).

    Returns
    -------
    pl.DataFrame
        ``scope`` ("all", "head", "torso", "tail"), ``rows``, ``positives`` and
        one column per metric (roc_auc, pr_auc, log_loss, brier, ece,
        relative_ece, log_loss_skill, brier_skill).
    """
    require(frame, numeric=(label, score))
    y_all, p_all = binary_arrays(frame, label=label, score=score)
    rows = []
    for scope, mask in _bucket_masks(frame, bucket):
        y, p = (y_all, p_all) if mask is None else (y_all[mask], p_all[mask])
        row: dict[str, object] = {"scope": scope, "rows": int(y.size), "positives": int(y.sum())}
        row.update(_scope_metrics(y, p))
        rows.append(row)
    return pl.DataFrame(rows)


def ece_by_scope(
    frame: pl.DataFrame,
    *,
    label: str = LABEL,
    score: str = SCORE,
    bucket: str | None = POPULARITY_BUCKET,
) -> dict[str, float]:
    """:func:`ece` overall and per bucket, keyed by the scopes of :func:`classification_report`."""
    y_all, p_all = binary_arrays(frame, label=label, score=score)
    return {
        scope: _ece(y_all, p_all) if mask is None else _ece(y_all[mask], p_all[mask])
        for scope, mask in _bucket_masks(frame, bucket)
    }
