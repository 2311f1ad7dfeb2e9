"""Probability-quality metrics over a frame of labels and scores, overall and per bucket."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

from longtail.metrics._checks import binary_arrays, require
from longtail.schema import BUCKETS, LABEL, POPULARITY_BUCKET

__all__ = [
    "brier",
    "classification_report",
    "ece",
    "log_loss",
    "per_bucket",
    "pr_auc",
    "reliability_bins",
    "roc_auc",
]

SCORE = "probability"
_EPS = 1e-7


def roc_auc(frame: pl.DataFrame, *, label: str = LABEL, score: str = SCORE) -> float:
    """Area under the ROC curve; NaN when only one class is present.

    Raises
    ------
    StageError
        A column is missing, not numeric, null, or the label is not 0/1.
    """
    y, s = binary_arrays(frame, label=label, score=score)
    if y.size == 0 or y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, s))


def pr_auc(frame: pl.DataFrame, *, label: str = LABEL, score: str = SCORE) -> float:
    """Area under the precision-recall curve (average precision); NaN without positives."""
    y, s = binary_arrays(frame, label=label, score=score)
    if y.size == 0 or y.max() == 0:
        return float("nan")
    return float(average_precision_score(y, s))


def log_loss(frame: pl.DataFrame, *, label: str = LABEL, score: str = "probability") -> float:
    """Mean negative log-likelihood of probabilities, clipped to [1e-7, 1 - 1e-7]."""
    y, p = binary_arrays(frame, label=label, score=score)
    if y.size == 0:
        return float("nan")
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(frame: pl.DataFrame, *, label: str = LABEL, score: str = "probability") -> float:
    """Mean squared error between probability and label."""
    y, p = binary_arrays(frame, label=label, score=score)
    if y.size == 0:
        return float("nan")
    return float(np.mean((p - y) ** 2))


def reliability_bins(
    frame: pl.DataFrame, *, label: str = LABEL, score: str = "probability", n_bins: int = 15
) -> pl.DataFrame:
    """Equal-width reliability bins of the probability.

    Returns
    -------
    pl.DataFrame
        One row per non-empty bin: ``bin``, ``lower``, ``upper``, ``count``,
        ``mean_probability``, ``positive_rate``.
    """
    if n_bins < 1:
        msg = f"n_bins must be >= 1. Got {n_bins!r} instead."
        raise ValueError(msg)
    y, p = binary_arrays(frame, label=label, score=score)
    idx = np.minimum((np.clip(p, 0.0, 1.0) * n_bins).astype(np.int64), n_bins - 1)
    return (
        pl.DataFrame({"bin": idx, "p": p, "y": y})
        .group_by("bin")
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("p").mean().alias("mean_probability"),
            pl.col("y").mean().alias("positive_rate"),
        )
        .with_columns(
            (pl.col("bin") / n_bins).alias("lower"), ((pl.col("bin") + 1) / n_bins).alias("upper")
        )
        .select("bin", "lower", "upper", "count", "mean_probability", "positive_rate")
        .sort("bin")
    )


def ece(
    frame: pl.DataFrame, *, label: str = LABEL, score: str = "probability", n_bins: int = 15
) -> float:
    """Return the expected calibration error: count-weighted mean |positive rate - probability|."""
    bins = reliability_bins(frame, label=label, score=score, n_bins=n_bins)
    total = int(bins["count"].sum())
    if total == 0:
        return float("nan")
    gap = (bins["positive_rate"] - bins["mean_probability"]).abs() * bins["count"]
    return float(gap.sum() / total)


Metric = Callable[..., float]
_METRICS: dict[str, Metric] = {
    "roc_auc": roc_auc,
    "pr_auc": pr_auc,
    "log_loss": log_loss,
    "brier": brier,
    "ece": ece,
}


def per_bucket(
    frame: pl.DataFrame,
    metric: Metric,
    *,
    label: str = LABEL,
    score: str = "probability",
    bucket: str = POPULARITY_BUCKET,
) -> pl.DataFrame:
    """Apply ``metric`` within each popularity bucket.

    Returns
    -------
    pl.DataFrame
        ``bucket``, ``rows``, ``positives``, ``value``; head/torso/tail first, in
        that order, then any other bucket value.
    """
    require(frame, numeric=(label, score), other=(bucket,))
    present = frame[bucket].drop_nulls().unique().to_list()
    order = [b for b in BUCKETS if b in present] + sorted(b for b in present if b not in BUCKETS)
    rows = []
    for name in order:
        part = frame.filter(pl.col(bucket) == name)
        rows.append(
            {
                "bucket": name,
                "rows": part.height,
                "positives": int(part[label].cast(pl.Int64).sum()),
                "value": metric(part, label=label, score=score),
            }
        )
    schema = {"bucket": pl.String, "rows": pl.Int64, "positives": pl.Int64, "value": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def classification_report(
    frame: pl.DataFrame,
    *,
    label: str = LABEL,
    score: str = "probability",
    bucket: str | None = POPULARITY_BUCKET,
) -> pl.DataFrame:
    """All probability metrics overall and per bucket, one row per scope.

    Returns
    -------
    pl.DataFrame
        ``scope`` ("all", "head", "torso", "tail"), ``rows``, ``positives`` and
        one column per metric (roc_auc, pr_auc, log_loss, brier, ece).
    """
    require(frame, numeric=(label, score))
    scopes: list[tuple[str, pl.DataFrame]] = [("all", frame)]
    if bucket is not None and bucket in frame.columns:
        present = set(frame[bucket].drop_nulls().unique().to_list())
        scopes += [(b, frame.filter(pl.col(bucket) == b)) for b in BUCKETS if b in present]
    rows = []
    for scope, part in scopes:
        row: dict[str, object] = {
            "scope": scope,
            "rows": part.height,
            "positives": int(part[label].cast(pl.Int64).sum()),
        }
        for name, fn in _METRICS.items():
            row[name] = fn(part, label=label, score=score)
        rows.append(row)
    return pl.DataFrame(rows)
