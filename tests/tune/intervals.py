"""Bootstrap intervals of one metric over rows or whole users: test helpers.

The leaderboard's intervals combine test users and training seeds
(:func:`longtail.tune.stats.seed_interval` over :func:`~longtail.tune.stats.cluster_weights`);
these plain percentile intervals of ``metric(y, p)`` are what its tests compare against.
Rows are resampled with :func:`scipy.stats.bootstrap`; whole clusters (users) with own
code, since SciPy has no cluster bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import stats as scipy_stats

from longtail.errors import StageError
from longtail.schema import LABEL, OBJECTIVES, POPULARITY_BUCKET, PROBABILITY, USER_ID, Objective
from longtail.tune.objective import _ap, _check, _head_tail_ap, per_user_recall
from longtail.tune.stats import Interval, Metric


def _cluster_indices(
    groups: NDArray[np.int64], rounds: int, rng: np.random.Generator
) -> Iterator[NDArray[np.int64]]:
    # Cluster bootstrap: resample whole groups (users), keep all their rows. SciPy's
    # bootstrap resamples single observations only, so this part stays our own.
    uniq, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(uniq.size))
    ends = np.append(starts[1:], groups.size)
    for _ in range(rounds):
        pick = rng.integers(0, uniq.size, uniq.size)
        yield np.concatenate([order[starts[g] : ends[g]] for g in pick])


def _percentile_interval(estimate: float, values: Sequence[float], level: float) -> Interval:
    arr = np.asarray([v for v in values if np.isfinite(v)])
    alpha = (1 - level) / 2
    return Interval(
        estimate=estimate,
        low=float(np.quantile(arr, alpha)),
        high=float(np.quantile(arr, 1 - alpha)),
        level=level,
    )


def _row_bootstrap(
    statistic: Callable[..., float],
    data: tuple[NDArray[np.float64], ...],
    *,
    rounds: int,
    level: float,
    seed: int,
) -> tuple[float, float]:
    """SciPy's paired percentile bootstrap of ``statistic(*data)`` over rows."""
    res = scipy_stats.bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=rounds,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


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

    Rows are resampled with :func:`scipy.stats.bootstrap`; with ``groups``, whole
    clusters are resampled (own code: SciPy has no cluster bootstrap) and rounds
    whose metric is not finite are dropped.

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
    estimate = float(metric(y, p))
    if groups is None:
        low, high = _row_bootstrap(metric, (y, p), rounds=rounds, level=level, seed=seed)
        return Interval(estimate=estimate, low=low, high=high, level=level)
    rng = np.random.default_rng(seed)
    values = [metric(y[i], p[i]) for i in _cluster_indices(groups, rounds, rng)]
    return _percentile_interval(estimate, values, level)


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

    def diff(y_: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
        return metric(y_, a) - metric(y_, b)

    estimate = float(diff(y, p_candidate, p_baseline))
    if groups is None:
        data = (y, p_candidate, p_baseline)
        low, high = _row_bootstrap(diff, data, rounds=rounds, level=level, seed=seed)
        return Interval(estimate=estimate, low=low, high=high, level=level)
    rng = np.random.default_rng(seed)
    values = [
        diff(y[i], p_candidate[i], p_baseline[i]) for i in _cluster_indices(groups, rounds, rng)
    ]
    return _percentile_interval(estimate, values, level)


@dataclass(frozen=True)
class IntervalInputs:
    """Arrays that make the bootstrap helpers' ``metric(y, p)`` an objective.

    ``scores(frame)`` turns one trial's scored rows into the ``p`` array; all
    trials' arrays line up element by element with ``y`` and ``groups``, which is
    what the paired bootstrap needs.
    """

    metric: Metric
    y: NDArray[np.float64]
    groups: NDArray[np.int64] | None
    name: Objective
    k: int
    score: str = PROBABILITY

    def scores(self, frame: pl.DataFrame) -> NDArray[np.float64]:
        """The ``p`` array of one trial's scored rows (same rows, same order as the others)."""
        if self.name == "recall_at_k":
            return per_user_recall(frame, k=self.k, score=self.score)["recall"].to_numpy()
        return frame[self.score].cast(pl.Float64).to_numpy()


def interval_inputs(
    frame: pl.DataFrame, name: Objective, *, k: int, cluster_by_user: bool
) -> IntervalInputs:
    """Build the bootstrap inputs of an objective on ``frame`` (the test rows).

    - ``pr_auc``: elements are rows, ``y`` the labels; with ``cluster_by_user``
      whole users are resampled (a user's rows share the user's propensity, so
      rows are not independent and a row bootstrap would be overconfident).
    - ``tail_pr_auc``: elements are rows; ``y`` carries the row index so the
      metric can look up each resampled row's label and bucket.
    - ``recall_at_k``: elements are users (with a positive); ``p`` is each user's
      recall@k, the metric their mean; users are the natural unit already.

    Raises
    ------
    StageError
        A column is missing or there is no positive row.
    """
    _check(frame, (LABEL, USER_ID, POPULARITY_BUCKET))
    labels = frame[LABEL].cast(pl.Float64).to_numpy()
    if labels.size == 0 or labels.max() <= 0:
        msg = "the test split has no positive row; no interval can be computed"
        raise StageError(msg)
    users = frame[USER_ID].to_numpy()
    groups = np.unique(users, return_inverse=True)[1].astype(np.int64) if cluster_by_user else None
    if name == "pr_auc":
        return IntervalInputs(_ap, labels, groups, name, k)
    if name == "tail_pr_auc":
        bucket = frame[POPULARITY_BUCKET].to_numpy()

        def head_tail(rows: NDArray[np.float64], p: NDArray[np.float64]) -> float:
            idx = rows.astype(np.int64)
            return _head_tail_ap(labels[idx], p, bucket[idx])

        return IntervalInputs(head_tail, np.arange(frame.height, dtype=np.float64), groups, name, k)
    if name == "recall_at_k":
        n_users = frame.filter(pl.col(LABEL) > 0)[USER_ID].n_unique()

        def mean(_: NDArray[np.float64], p: NDArray[np.float64]) -> float:
            return float(np.mean(p))

        return IntervalInputs(mean, np.zeros(n_users), None, name, k)
    msg = f"tune.objective must be one of {OBJECTIVES}. Got {name!r} instead."
    raise ValueError(msg)
