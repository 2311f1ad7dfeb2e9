"""Score every system's lists on the same users, with paired bootstrap intervals against the model.

Pure functions over frames (no Ray, no Feast), so the evaluator is tested on
hand-built lists and the pipeline only assembles its inputs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from longtail import schema as S
from longtail.metrics.lists import (
    aplt,
    arp,
    catalog_coverage_of_lists,
    exposure_gini,
    mean_accuracy,
    novelty,
    per_user_accuracy,
    recall_curve,
)

__all__ = [
    "COMPARED",
    "MODEL",
    "Evaluation",
    "EvaluationInputs",
    "candidate_recall",
    "evaluate_systems",
    "holdout_truth",
    "paired_interval",
    "verdict",
]

MODEL = "model"
#: Metrics with a paired interval of (model - baseline).
COMPARED = ("recall_at_k", "ndcg_at_k")


def holdout_truth(
    events: pl.DataFrame,
    *,
    cutoff: dt.datetime,
    end: dt.datetime,
    target_event: str,
    exclude_purchased: bool,
) -> pl.DataFrame:
    """Distinct (user, item) target events in ``[cutoff, end)``.

    With ``exclude_purchased``, items the user bought before ``cutoff`` are left out
    (the served lists never show them, so they cannot count against any system).
    """
    t = pl.col(S.EVENT_TIME)
    truth = (
        events.filter((t >= cutoff) & (t < end) & (pl.col(S.EVENT_TYPE) == target_event))
        .select(S.USER_ID, S.ITEM_ID)
        .unique()
    )
    if exclude_purchased:
        bought = (
            events.filter((t < cutoff) & (pl.col(S.EVENT_TYPE) == "purchase"))
            .select(S.USER_ID, S.ITEM_ID)
            .unique()
        )
        truth = truth.join(bought, on=[S.USER_ID, S.ITEM_ID], how="anti")
    return truth.sort(S.USER_ID, S.ITEM_ID)


def paired_interval(
    diff: np.ndarray, *, rounds: int, seed: int, level: float = 0.95
) -> dict[str, float]:
    """Mean of per-user differences with a percentile bootstrap interval over users.

    Resampling users and taking both systems' values for each drawn user is the
    paired bootstrap; on the vector of per-user differences it is SciPy's bootstrap
    of the mean.
    """
    d = np.asarray(diff, dtype=np.float64)
    mean = float(d.mean()) if d.size else float("nan")
    if d.size < 2 or float(np.ptp(d)) == 0.0:
        return {"diff": mean, "low": mean, "high": mean}
    res = stats.bootstrap(
        (d,),
        np.mean,
        n_resamples=rounds,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return {"diff": mean, "low": float(ci.low), "high": float(ci.high)}


def candidate_recall(truth: pl.DataFrame, candidates: pl.DataFrame) -> dict[str, float]:
    """Share of truth pairs among the candidates at all, and per source (sums to ``all``)."""
    n = truth.height
    if n == 0:
        return {"all": float("nan")}
    # Cut the candidates to the truth pairs before any unique: the candidates are every
    # served user's (33M rows at 10M events), the truth a few thousand pairs.
    found = (
        candidates.select(S.USER_ID, S.ITEM_ID, "source")
        .join(truth.select(S.USER_ID, S.ITEM_ID), on=[S.USER_ID, S.ITEM_ID], how="semi")
        .unique([S.USER_ID, S.ITEM_ID], keep="first", maintain_order=True)
    )
    out = {"all": found.height / n}
    for source, count in found.group_by("source").len().sort("source").iter_rows():
        out[str(source)] = count / n
    return out


@dataclass(frozen=True)
class EvaluationInputs:
    """Everything the evaluator needs beside the lists, all as of the cutoff."""

    truth: pl.DataFrame
    users: pl.Series
    k: int
    buckets: pl.DataFrame  # item_id, item_popularity_bucket as of the cutoff
    catalog: pl.Series  # items available at the cutoff
    popularity: pl.DataFrame  # item_id, popularity (views in the window)
    item_users: pl.DataFrame  # item_id, users (distinct users who touched it before the cutoff)
    n_users: int
    rounds: int
    seed: int

    def bucket_of(self, items: pl.DataFrame) -> pl.DataFrame:
        """``items`` with the bucket as of the cutoff (items never seen are tail)."""
        return items.join(self.buckets, on=S.ITEM_ID, how="left").with_columns(
            pl.col(S.POPULARITY_BUCKET).fill_null("tail")
        )

    @property
    def tail_items(self) -> pl.Series:
        """Items in the tail bucket (the catalog's unseen items included)."""
        everything = pl.concat(
            [pl.DataFrame({S.ITEM_ID: self.catalog.cast(pl.Int64)}), self.truth.select(S.ITEM_ID)]
        ).unique()
        tagged = self.bucket_of(everything)
        return tagged.filter(pl.col(S.POPULARITY_BUCKET) == "tail")[S.ITEM_ID]


@dataclass(frozen=True)
class Evaluation:
    """Metrics of every system, per-user values, and the comparisons."""

    systems: dict[str, dict[str, float]]
    per_user: pl.DataFrame  # system, user_id, accuracy metrics
    vs_baseline: dict[str, dict[str, dict[str, float]]]
    recall_curves: dict[str, list[float]]
    recall_by_bucket: dict[str, dict[str, float]]

    def to_json(self) -> dict[str, Any]:
        """The JSON parts (per-user values are written as Parquet)."""
        return {
            "systems": self.systems,
            "vs_baseline": self.vs_baseline,
            "recall_curves": self.recall_curves,
            "recall_by_bucket": self.recall_by_bucket,
        }


def _recall_by_bucket(
    truth: pl.DataFrame, lists: pl.DataFrame, inp: EvaluationInputs
) -> dict[str, float]:
    tagged = inp.bucket_of(truth)
    top = lists.filter(pl.col(S.RANK) <= inp.k).select(S.USER_ID, S.ITEM_ID).unique()
    hit = tagged.join(
        top.with_columns(pl.lit(1).alias("_hit")), on=[S.USER_ID, S.ITEM_ID], how="left"
    )
    out = {}
    for bucket in S.BUCKETS:
        part = hit.filter(pl.col(S.POPULARITY_BUCKET) == bucket)
        out[bucket] = float(part["_hit"].fill_null(0).mean()) if part.height else float("nan")  # type: ignore[arg-type]
    return out


def _mean_length(lists: pl.DataFrame, k: int) -> float:
    lengths = lists.filter(pl.col(S.RANK) <= k).group_by(S.USER_ID).len()["len"]
    value = lengths.mean()
    return float(value) if isinstance(value, (int, float)) else 0.0


def evaluate_systems(systems: dict[str, pl.DataFrame], inp: EvaluationInputs) -> Evaluation:
    """Score each system's ``user_id, item_id, rank`` lists on ``inp.users``.

    ``systems`` must hold :data:`MODEL`; every other entry is a baseline compared
    with it by a paired bootstrap over users (``inp.rounds`` rounds) on
    :data:`COMPARED`.
    """
    tails = inp.tail_items
    truth = inp.truth.join(
        pl.DataFrame({S.USER_ID: inp.users.cast(pl.Int64)}), on=S.USER_ID, how="semi"
    )
    results: dict[str, dict[str, float]] = {}
    per_user: dict[str, pl.DataFrame] = {}
    curves: dict[str, list[float]] = {}
    by_bucket: dict[str, dict[str, float]] = {}
    for name, lists in systems.items():
        served = lists.join(
            pl.DataFrame({S.USER_ID: inp.users.cast(pl.Int64)}), on=S.USER_ID, how="semi"
        )
        per = per_user_accuracy(truth, served, inp.users, k=inp.k, tail_items=tails)
        per_user[name] = per
        # Beyond accuracy over every list the system wrote, not only the evaluated users'.
        results[name] = {
            **mean_accuracy(per),
            "catalog_coverage": catalog_coverage_of_lists(
                lists, k=inp.k, catalog_size=max(inp.catalog.len(), 1)
            ),
            "aplt": aplt(lists, k=inp.k, tail_items=tails),
            "arp": arp(lists, k=inp.k, popularity=inp.popularity),
            "exposure_gini": exposure_gini(lists, k=inp.k, catalog=inp.catalog),
            "novelty": novelty(lists, k=inp.k, item_users=inp.item_users, n_users=inp.n_users),
            "users_with_list": float(lists[S.USER_ID].n_unique()),
            "mean_list_length": _mean_length(lists, inp.k),
        }
        curves[name] = recall_curve(truth, served, inp.users, k=inp.k, per_user=per)
        by_bucket[name] = _recall_by_bucket(truth, served, inp)
    vs: dict[str, dict[str, dict[str, float]]] = {}
    model = per_user[MODEL]
    for name, per in per_user.items():
        if name == MODEL:
            continue
        vs[name] = {}
        for i, metric in enumerate(COMPARED):
            diff = model[metric].to_numpy() - per[metric].to_numpy()
            vs[name][metric] = paired_interval(diff, rounds=inp.rounds, seed=inp.seed + i)
    table = pl.concat(
        [p.with_columns(pl.lit(n).alias("system")) for n, p in per_user.items()]
    ).select("system", pl.exclude("system"))
    return Evaluation(
        systems=results,
        per_user=table,
        vs_baseline=vs,
        recall_curves=curves,
        recall_by_bucket=by_bucket,
    )


def verdict(vs_baseline: dict[str, dict[str, dict[str, float]]], *, k: int) -> str:
    """Say in one plain sentence whether the model beats every baseline beyond noise."""
    losses, ties = [], []
    for name, metrics in vs_baseline.items():
        for metric, iv in metrics.items():
            label = f"{metric.replace('_at_k', '')}@{k} vs {name}"
            if iv["high"] < 0:
                losses.append(f"{label} ({iv['diff']:+.3f})")
            elif iv["low"] <= 0:
                ties.append(f"{label} ({iv['diff']:+.3f})")
    if not losses and not ties:
        return (
            f"The served lists beat every baseline on recall@{k} and NDCG@{k}: "
            "each paired 95% interval lies above zero."
        )
    parts = []
    if losses:
        parts.append("lose beyond noise on " + ", ".join(losses))
    if ties:
        parts.append("are within noise on " + ", ".join(ties))
    return "The served lists " + "; and ".join(parts) + "."
