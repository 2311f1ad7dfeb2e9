"""The tune objective over scored rows, and its form for bootstrap intervals.

Objectives (``tune.objective``), all higher-is-better, on calibrated probabilities:

- ``pr_auc``: average precision over all rows;
- ``recall_at_k``, ``ndcg_at_k``, ``tail_recall_at_k``: the backtest's list metrics
  at every snapshot time of the split. On candidate rows (the default population) a
  list is one user's candidate set at one time T, ranked as it would have been
  served, against what the user then did; each user's value is the mean over their
  lists with a positive (tail recall: with a tail positive), so users are the
  bootstrap unit. ``k`` is ``train.ranking_k``. On view rows these re-rank viewed
  items and are no measure of recommendation quality (``metrics.ranking``);
- ``tail_pr_auc``: the mean of head and tail PR-AUC, so a strategy cannot win
  on the head alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score

from longtail.errors import StageError
from longtail.metrics.ranking import LIST, top_k, with_lists
from longtail.schema import (
    BUCKETS,
    LABEL,
    OBJECTIVES,
    POPULARITY_BUCKET,
    PROBABILITY,
    RANK,
    USER_ID,
    Objective,
)
from longtail.tune.stats import WeightedScore

__all__ = [
    "LIST_OBJECTIVES",
    "OBJECTIVES",
    "PROBABILITY",
    "USER_OBJECTIVES",
    "Objective",
    "UserObjective",
    "objective_label",
    "objective_value",
    "per_user_list_metric",
    "per_user_recall",
    "register_user_objective",
    "test_scores",
    "test_units",
    "user_score",
    "weighted_ap",
    "weighted_skills",
]

#: The list objectives (per user: the mean over the user's lists).
LIST_OBJECTIVES: Final = ("recall_at_k", "ndcg_at_k", "tail_recall_at_k")


def objective_label(name: str, *, k: int) -> str:
    """Human name of an objective, e.g. ``"recall@10"``."""
    if name in USER_OBJECTIVES:
        return USER_OBJECTIVES[name][1]
    if name in LIST_OBJECTIVES:
        return f"list {name.replace('_at_k', '')}@{k}"
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
    frame: pl.DataFrame,
    name: str,
    *,
    k: int,
    score: str = PROBABILITY,
    trial_dir: Path | None = None,
    split: str = "validation",
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
    trial_dir, split
        For a registered per-user objective (:func:`register_user_objective`):
        the trial folder its function reads the model from, and the split.

    Raises
    ------
    StageError
        A column is missing.
    ValueError
        Unknown objective.
    """
    if name in USER_OBJECTIVES:
        if trial_dir is None:
            msg = f"objective {name!r} is computed from the trial's model; pass trial_dir"
            raise ValueError(msg)
        values = USER_OBJECTIVES[name][0](trial_dir, frame, split, k)["value"]
        return float(values.mean()) if values.len() else float("nan")  # type: ignore[arg-type]
    _check(frame, (LABEL, score))
    y = frame[LABEL].cast(pl.Float64).to_numpy()
    p = frame[score].cast(pl.Float64).to_numpy()
    if name == "pr_auc":
        return _ap(y, p)
    if name == "tail_pr_auc":
        _check(frame, (POPULARITY_BUCKET,))
        return _head_tail_ap(y, p, frame[POPULARITY_BUCKET].to_numpy())
    if name in LIST_OBJECTIVES:
        _check(frame, (USER_ID,))
        if not frame[LABEL].cast(pl.Int64).sum():
            return float("nan")
        values = per_user_list_metric(frame, name, k=k, score=score)["value"]
        return float(values.mean()) if values.len() else float("nan")  # type: ignore[arg-type]
    msg = f"tune.objective must be one of {OBJECTIVES}. Got {name!r} instead."
    raise ValueError(msg)


def per_user_list_metric(
    frame: pl.DataFrame, name: str, *, k: int, score: str = PROBABILITY
) -> pl.DataFrame:
    """Each user's mean over their lists of a list metric: ``user_id``, ``value``, by user.

    A list is the user's rows at one ``event_time`` (:func:`longtail.metrics.ranking.
    with_lists`); lists without a positive (a tail positive, for ``tail_recall_at_k``)
    do not count, nor do users left with none.
    """
    _check(frame, (USER_ID, LABEL, score, POPULARITY_BUCKET))
    lists = with_lists(frame)
    y = pl.col(LABEL).cast(pl.Float64)
    tail = (pl.col(POPULARITY_BUCKET) == "tail").cast(pl.Float64)
    totals = lists.group_by(LIST).agg(
        pl.col(USER_ID).first(), y.sum().alias("n_pos"), (y * tail).sum().alias("n_tail")
    )
    ranked = top_k(lists, k=k, user=LIST, score=score)
    hits = ranked.group_by(LIST).agg(
        y.sum().alias("hits"),
        (y * tail).sum().alias("tail_hits"),
        (y / (pl.col(RANK) + 1).cast(pl.Float64).log(2)).sum().alias("dcg"),
    )
    # Only the counts are filled: a float fill over every column turns user_id into f64.
    per = totals.join(hits, on=LIST, how="left").with_columns(
        pl.col("hits", "tail_hits", "dcg").fill_null(0.0)
    )
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    if name == "recall_at_k":
        per = per.filter(pl.col("n_pos") > 0).with_columns(
            (pl.col("hits") / pl.col("n_pos")).alias("value")
        )
    elif name == "ndcg_at_k":
        per = per.filter(pl.col("n_pos") > 0)
        best = ideal[np.minimum(per["n_pos"].to_numpy().astype(np.int64), k)]
        per = per.with_columns((pl.col("dcg") / pl.Series(best)).alias("value"))
    elif name == "tail_recall_at_k":
        per = per.filter(pl.col("n_tail") > 0).with_columns(
            (pl.col("tail_hits") / pl.col("n_tail")).alias("value")
        )
    else:
        msg = f"list objective must be one of {LIST_OBJECTIVES}. Got {name!r} instead."
        raise ValueError(msg)
    return per.group_by(USER_ID).agg(pl.col("value").mean()).sort(USER_ID)


def per_user_recall(frame: pl.DataFrame, *, k: int, score: str = PROBABILITY) -> pl.DataFrame:
    """Each user's list recall@k: ``user_id``, ``recall``, sorted by user.

    Without ``event_time`` a user's rows are one list, and its mean is
    :func:`longtail.metrics.recall_at_k`.
    """
    return per_user_list_metric(frame, "recall_at_k", k=k, score=score).rename({"value": "recall"})


# --------------------------------------------------------------------------- weighted test metrics
#
# The leaderboard's intervals resample test users (see longtail.tune.stats): each
# trial's metric is evaluated under the same bootstrap weightings of the test rows,
# so every number below takes an ``R x n`` array of row weights and returns R values.

#: A per-user objective computed from a trial: ``(trial_dir, scored_rows, split, k)`` ->
#: frame of ``user_id`` and ``value`` (users it is undefined for left out). The
#: backtest's list objectives (recall@k, tail recall@k, NDCG@k of the served lists)
#: plug in here with :func:`register_user_objective`.
UserObjective = Callable[[Path, pl.DataFrame, str, int], pl.DataFrame]
USER_OBJECTIVES: dict[str, tuple[UserObjective, str]] = {}


def register_user_objective(name: str, fn: UserObjective, *, label: str) -> None:
    """Make ``name`` an objective whose value is the mean over users of ``fn``'s values.

    Its intervals then come from the same user-clustered, seed-averaged paired
    bootstrap as PR-AUC's (:func:`user_score`); ``label`` names it in the verdict.
    """
    USER_OBJECTIVES[name] = (fn, label)


def weighted_ap(y: NDArray[np.float64], p: NDArray[np.float64]) -> WeightedScore:
    """Average precision under row weights; ``score(ones)`` equals scikit-learn's AP.

    Precomputes the ranking once; each call is a weighted cumulative sum with
    tied scores as one threshold (as ``average_precision_score`` does).
    """
    order = np.argsort(-p, kind="stable")
    ys = y[order]
    ps = p[order]
    ends = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True]) if ps.size else np.zeros(0, np.int64)

    def score(w: NDArray[np.float64]) -> NDArray[np.float64]:
        ws = w[:, order]
        tp = np.cumsum(ws * ys, axis=1)[:, ends]
        fp = np.cumsum(ws * (1.0 - ys), axis=1)[:, ends]
        total = tp[:, -1] if tp.shape[1] else np.zeros(w.shape[0])
        seen = tp + fp
        precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
        gain = np.diff(tp, axis=1, prepend=0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: NDArray[np.float64] = (gain * precision).sum(axis=1) / total
        return np.where(total > 0, out, np.nan)

    return score


def _subset(
    score_of: Callable[[NDArray[np.int64]], WeightedScore], idx: NDArray[np.int64]
) -> WeightedScore:
    inner = score_of(idx)
    return lambda w: inner(w[:, idx])


def weighted_skills(y: NDArray[np.float64], p: NDArray[np.float64]) -> dict[str, WeightedScore]:
    """Weighted log-loss skill, Brier skill and relative ECE (equal-mass bins of ``p``).

    The same definitions as :mod:`longtail.metrics.classification`, the base
    rate and bins taken under the weights (bin edges from the unweighted rows).
    """
    q = np.clip(p, 1e-7, 1 - 1e-7)
    ll = -(y * np.log(q) + (1 - y) * np.log(1 - q))
    sq = (p - y) ** 2
    edges = np.unique(np.quantile(p, np.linspace(0, 1, 16))[1:-1]) if p.size else np.zeros(0)
    onehot = np.eye(edges.size + 1)[np.searchsorted(edges, p, side="right")]
    resid = (y - p)[:, None] * onehot

    def parts(w: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        total = w.sum(axis=1)
        return total, (w @ y) / total

    def log_loss_skill(w: NDArray[np.float64]) -> NDArray[np.float64]:
        total, rate = parts(w)
        ref = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(1.0 - (w @ ll) / total / ref)

    def brier_skill(w: NDArray[np.float64]) -> NDArray[np.float64]:
        total, rate = parts(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(1.0 - (w @ sq) / total / (rate * (1 - rate)))

    def relative_ece(w: NDArray[np.float64]) -> NDArray[np.float64]:
        total, rate = parts(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.abs(w @ resid).sum(axis=1) / total / rate)

    return {
        "log_loss_skill": log_loss_skill,
        "brier_skill": brier_skill,
        "relative_ece": relative_ece,
    }


def test_units(frame: pl.DataFrame, name: str, *, cluster_by_user: bool) -> NDArray[np.int64]:
    """The bootstrap cluster of each test row: its user, or itself.

    Per-user objectives always resample users (users are their unit).
    """
    _check(frame, (USER_ID,))
    if cluster_by_user or name in LIST_OBJECTIVES or name in USER_OBJECTIVES:
        return np.unique(frame[USER_ID].to_numpy(), return_inverse=True)[1].astype(np.int64)
    return np.arange(frame.height, dtype=np.int64)


def user_score(frame: pl.DataFrame, per_user: pl.DataFrame) -> WeightedScore:
    """The weighted mean over users of ``per_user`` (``user_id``, ``value``) under row weights.

    A user weighs the weight of its first test row (all its rows share one
    weight when users are the bootstrap clusters).
    """
    firsts = (
        frame.with_row_index("__row")
        .group_by(USER_ID)
        .agg(pl.col("__row").first())
        .join(per_user.select(USER_ID, pl.col("value").cast(pl.Float64)), on=USER_ID, how="inner")
        .sort(USER_ID)
    )
    rows = firsts["__row"].to_numpy().astype(np.int64)
    values = firsts["value"].to_numpy()

    def score(w: NDArray[np.float64]) -> NDArray[np.float64]:
        uw = w[:, rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray((uw @ values) / uw.sum(axis=1))

    return score


def test_scores(
    frame: pl.DataFrame,
    name: str,
    *,
    k: int,
    trial_dir: Path | None = None,
    score: str = PROBABILITY,
) -> dict[str, WeightedScore]:
    """Every weighted test metric of one trial's scored test rows.

    Keys: ``objective`` (``name``), ``pr_auc``, ``pr_auc_<bucket>`` per popularity
    bucket, ``log_loss_skill``, ``brier_skill``, ``relative_ece``. All trials'
    frames hold the same rows in the same order, so their scores line up.

    Raises
    ------
    StageError
        A column is missing; ValueError for an unknown objective.
    """
    _check(frame, (LABEL, USER_ID, POPULARITY_BUCKET, score))
    y = frame[LABEL].cast(pl.Float64).to_numpy()
    p = frame[score].cast(pl.Float64).to_numpy()
    bucket = frame[POPULARITY_BUCKET].to_numpy()
    out: dict[str, WeightedScore] = {"pr_auc": weighted_ap(y, p)}
    for b in BUCKETS:
        idx = np.flatnonzero(bucket == b).astype(np.int64)
        if idx.size:
            out[f"pr_auc_{b}"] = _subset(lambda i: weighted_ap(y[i], p[i]), idx)
    out.update(weighted_skills(y, p))
    if name == "pr_auc":
        out["objective"] = out["pr_auc"]
    elif name == "tail_pr_auc":
        head, tail = out.get("pr_auc_head"), out.get("pr_auc_tail")
        if head is None or tail is None:
            out["objective"] = lambda w: np.full(w.shape[0], np.nan)
        else:
            out["objective"] = lambda w: (head(w) + tail(w)) / 2
    elif name in LIST_OBJECTIVES:
        out["objective"] = user_score(frame, per_user_list_metric(frame, name, k=k, score=score))
    elif name in USER_OBJECTIVES:
        if trial_dir is None:
            msg = f"objective {name!r} is computed from the trial's model; pass trial_dir"
            raise ValueError(msg)
        fn, _ = USER_OBJECTIVES[name]
        out["objective"] = user_score(frame, fn(trial_dir, frame, "test", k))
    else:
        msg = f"tune.objective must be one of {OBJECTIVES}. Got {name!r} instead."
        raise ValueError(msg)
    return out
