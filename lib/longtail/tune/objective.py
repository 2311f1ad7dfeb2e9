"""The tune objective over scored rows, and its form for bootstrap intervals.

Objectives (``tune.objective``), all higher-is-better, on calibrated probabilities:

- ``pr_auc``: average precision over all rows;
- ``recall_at_k``: mean over users with a positive of the share of their
  positives in their top ``k`` rows (``train.ranking_k``);
- ``tail_pr_auc``: the mean of head and tail PR-AUC, so a strategy cannot win
  on the head alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score

from longtail.errors import StageError
from longtail.metrics import recall_at_k
from longtail.metrics.ranking import top_k
from longtail.schema import LABEL, POPULARITY_BUCKET, USER_ID
from longtail.tune.stats import Metric

__all__ = [
    "OBJECTIVES",
    "PROBABILITY",
    "IntervalInputs",
    "Objective",
    "interval_inputs",
    "objective_label",
    "objective_value",
    "per_user_recall",
]

Objective = Literal["pr_auc", "recall_at_k", "tail_pr_auc"]
OBJECTIVES: Final = ("pr_auc", "recall_at_k", "tail_pr_auc")
PROBABILITY: Final = "probability"


def objective_label(name: Objective, *, k: int) -> str:
    """Human name of an objective, e.g. ``"recall@10"``."""
    if name == "recall_at_k":
        return f"recall@{k}"
    if name == "tail_pr_auc":
        return "mean of head and tail PR-AUC"
    return "PR-AUC"


def _ap(y: NDArray[np.float64], p: NDArray[np.float64]) -> float:
    if y.size == 0 or y.max() <= 0:
        return float("nan")
    return float(average_precision_score(y, p))


def _head_tail_ap(
    y: NDArray[np.float64], p: NDArray[np.float64], bucket: NDArray[np.object_]
) -> float:
    head, tail = bucket == "head", bucket == "tail"
    return float(np.mean([_ap(y[head], p[head]), _ap(y[tail], p[tail])]))


def _check(frame: pl.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"objective input lacks column(s) {missing}. Got columns {frame.columns!r} instead."
        raise StageError(msg)


def objective_value(
    frame: pl.DataFrame, name: Objective, *, k: int, score: str = PROBABILITY
) -> float:
    """Return the objective of scored rows (NaN when it is undefined, e.g. no positives).

    Parameters
    ----------
    frame
        Rows with ``label``, ``score``, ``user_id`` and ``item_popularity_bucket``.
    name
        One of :data:`OBJECTIVES`.
    k
        Top-k for ``recall_at_k``.
    score
        The probability column.

    Raises
    ------
    StageError
        A column is missing.
    ValueError
        Unknown objective.
    """
    _check(frame, (LABEL, score))
    y = frame[LABEL].cast(pl.Float64).to_numpy()
    p = frame[score].cast(pl.Float64).to_numpy()
    if name == "pr_auc":
        return _ap(y, p)
    if name == "tail_pr_auc":
        _check(frame, (POPULARITY_BUCKET,))
        return _head_tail_ap(y, p, frame[POPULARITY_BUCKET].to_numpy())
    if name == "recall_at_k":
        _check(frame, (USER_ID,))
        if not frame[LABEL].cast(pl.Int64).sum():
            return float("nan")
        return recall_at_k(frame, k=k, score=score)
    msg = f"tune.objective must be one of {OBJECTIVES}. Got {name!r} instead."
    raise ValueError(msg)


def per_user_recall(frame: pl.DataFrame, *, k: int, score: str = PROBABILITY) -> pl.DataFrame:
    """Each user's recall@k (users with a positive only): ``user_id``, ``recall``, sorted by user.

    Its mean is :func:`longtail.metrics.recall_at_k`.
    """
    _check(frame, (USER_ID, LABEL, score))
    y = pl.col(LABEL).cast(pl.Float64)
    totals = frame.group_by(USER_ID).agg(y.sum().alias("n_pos")).filter(pl.col("n_pos") > 0)
    hits = top_k(frame, k=k, score=score).group_by(USER_ID).agg(y.sum().alias("hits"))
    return (
        totals.join(hits, on=USER_ID, how="left")
        .select(USER_ID, (pl.col("hits").fill_null(0.0) / pl.col("n_pos")).alias("recall"))
        .sort(USER_ID)
    )


@dataclass(frozen=True)
class IntervalInputs:
    """Arrays for :mod:`longtail.tune.stats` that make its ``metric(y, p)`` the objective.

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
