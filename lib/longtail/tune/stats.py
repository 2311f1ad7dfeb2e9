"""Bootstrap confidence intervals on the test split, and a verdict a person can read.

Comparisons are *paired*: the baseline and a candidate are scored on the same
resampled rows in each bootstrap round, so the interval of the difference is
much tighter than two independent intervals would suggest, and "beyond noise"
means the difference's interval excludes zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Interval", "bootstrap_ci", "paired_bootstrap_diff", "verdict"]

Metric = Callable[[NDArray[np.float64], NDArray[np.float64]], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the interval."""
        return value < self.low or value > self.high


def _indices(
    n: int, rounds: int, rng: np.random.Generator, groups: NDArray[np.int64] | None
) -> list[NDArray[np.int64]]:
    if groups is None:
        return [rng.integers(0, n, n) for _ in range(rounds)]
    # Cluster bootstrap: resample whole groups (users), keep all their rows.
    uniq, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(uniq.size))
    ends = np.append(starts[1:], n)
    out = []
    for _ in range(rounds):
        pick = rng.integers(0, uniq.size, uniq.size)
        out.append(np.concatenate([order[starts[g] : ends[g]] for g in pick]))
    return out


def bootstrap_ci(
    metric: Metric,
    y: NDArray[np.float64],
    p: NDArray[np.float64],
    *,
    rounds: int = 200,
    level: float = 0.95,
    seed: int = 0,
    groups: NDArray[np.int64] | None = None,
) -> Interval:
    """Percentile bootstrap interval of ``metric(y, p)``.

    Parameters
    ----------
    metric
        ``metric(labels, scores) -> float``.
    y, p
        Labels and scores of the test split.
    rounds
        Bootstrap rounds.
    level
        Coverage, e.g. 0.95.
    seed
        Seed of the resampling.
    groups
        Optional cluster ids (users): resample whole clusters.
    """
    rng = np.random.default_rng(seed)
    stats = [metric(y[i], p[i]) for i in _indices(y.size, rounds, rng, groups)]
    stats_arr = np.asarray([s for s in stats if np.isfinite(s)])
    alpha = (1 - level) / 2
    return Interval(
        estimate=float(metric(y, p)),
        low=float(np.quantile(stats_arr, alpha)),
        high=float(np.quantile(stats_arr, 1 - alpha)),
        level=level,
    )


def paired_bootstrap_diff(
    metric: Metric,
    y: NDArray[np.float64],
    p_candidate: NDArray[np.float64],
    p_baseline: NDArray[np.float64],
    *,
    rounds: int = 200,
    level: float = 0.95,
    seed: int = 0,
    groups: NDArray[np.int64] | None = None,
) -> Interval:
    """Interval of ``metric(candidate) - metric(baseline)`` on the same resampled rows."""
    rng = np.random.default_rng(seed)
    diffs = []
    for i in _indices(y.size, rounds, rng, groups):
        d = metric(y[i], p_candidate[i]) - metric(y[i], p_baseline[i])
        if np.isfinite(d):
            diffs.append(d)
    arr = np.asarray(diffs)
    alpha = (1 - level) / 2
    return Interval(
        estimate=float(metric(y, p_candidate) - metric(y, p_baseline)),
        low=float(np.quantile(arr, alpha)),
        high=float(np.quantile(arr, 1 - alpha)),
        level=level,
    )


def verdict(
    *, metric_name: str, best: str, baseline: str, diff: Interval, baseline_value: float
) -> str:
    """A short plain-language verdict on the best strategy against the baseline."""
    rel = diff.estimate / baseline_value if baseline_value else float("nan")
    span = f"{diff.level:.0%} interval {diff.low:+.4f} to {diff.high:+.4f}"
    if best == baseline:
        return (
            f"The baseline ({baseline}) is the best configuration on {metric_name}; "
            "no imbalance strategy beat it."
        )
    if diff.low > 0:
        return (
            f"{best} beats the baseline ({baseline}) on {metric_name} by {diff.estimate:+.4f} "
            f"({rel:+.1%}); the {span} excludes zero, so the gain is beyond noise."
        )
    if diff.high < 0:
        return (
            f"{best} won the search but scores {diff.estimate:+.4f} against the baseline "
            f"({baseline}) on the test split ({span}): it does worse; keep the baseline."
        )
    return (
        f"{best} scores {diff.estimate:+.4f} ({rel:+.1%}) against the baseline ({baseline}) on "
        f"{metric_name}, but the {span} includes zero: the difference is within noise."
    )
