"""Metrics of served top-K lists against what users did next, and of what the lists expose.

Every function takes frames with named columns (Recommenders' style):

* ``truth``: ``user_id, item_id``, one row per distinct relevant (user, item);
* ``lists``: ``user_id, item_id, rank`` (1 = best), any length per user;
* ``users``: the evaluated users; every system is scored on exactly these, and a
  user without a list (or with a short one) simply scores fewer hits.

Accuracy metrics are per user, then averaged (:func:`per_user_accuracy` returns
the per-user values, so paired bootstraps over users can use them). Beyond-accuracy
metrics describe the lists alone (popularity bias, after Abdollahpouri et al.,
"Managing Popularity Bias in Recommender Systems with Personalized Re-ranking",
FLAIRS 2019; exposure Gini as LensKit's ``ExposureGini``; novelty as the mean
self-information of listed items, Zhou et al., PNAS 2010).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from longtail.errors import StageError
from longtail.metrics._checks import require
from longtail.schema import ITEM_ID, RANK, USER_ID

__all__ = [
    "ACCURACY_METRICS",
    "aplt",
    "arp",
    "catalog_coverage_of_lists",
    "exposure_gini",
    "gini",
    "mean_accuracy",
    "novelty",
    "per_user_accuracy",
    "recall_curve",
]

#: Per-user accuracy columns of :func:`per_user_accuracy`, averaged by :func:`mean_accuracy`.
ACCURACY_METRICS = (
    "recall_at_k",
    "ndcg_at_k",
    "hit_rate_at_k",
    "map_at_k",
    "tail_recall_at_k",
)


def _check_k(k: int) -> None:
    if k < 1:
        msg = f"k must be >= 1. Got {k!r} instead."
        raise ValueError(msg)


def _top(lists: pl.DataFrame, k: int) -> pl.DataFrame:
    require(lists, numeric=(RANK,), other=(USER_ID, ITEM_ID))
    return lists.filter(pl.col(RANK) <= k).select(
        pl.col(USER_ID).cast(pl.Int64), pl.col(ITEM_ID).cast(pl.Int64), pl.col(RANK)
    )


def per_user_accuracy(
    truth: pl.DataFrame,
    lists: pl.DataFrame,
    users: pl.Series,
    *,
    k: int,
    tail_items: pl.Series | None = None,
) -> pl.DataFrame:
    """Per-user accuracy of the top ``k`` of ``lists`` against ``truth``.

    Long because each metric's definition is written out here, beside the code that computes it.

    Definitions (binary relevance, ``T_u`` the user's truth items, ``L_u`` the top k):

    * ``recall_at_k`` = |L_u ∩ T_u| / |T_u| (Recommenders' ``recall_at_k``);
    * ``ndcg_at_k`` = DCG / ideal DCG, gain 1 at rank r discounted by log2(r + 1),
      the ideal placing min(|T_u|, k) hits first;
    * ``hit_rate_at_k`` = 1 if any hit;
    * ``map_at_k`` = sum of precision@r at each hit rank r / min(|T_u|, k);
    * ``tail_recall_at_k`` = recall over the user's truth items in ``tail_items``;
      null for users with none (averaged over the users that have some).

    Parameters
    ----------
    truth
        ``user_id, item_id`` relevant pairs (duplicates are dropped).
    lists
        ``user_id, item_id, rank``.
    users
        The evaluated users; each must have at least one truth item.
    k
        Cut-off.
    tail_items
        Item ids of the tail bucket, for ``tail_recall_at_k``.

    Returns
    -------
    pl.DataFrame
        ``user_id, n_truth, hits`` and the :data:`ACCURACY_METRICS`, one row per user,
        sorted by user.

    Raises
    ------
    StageError
        A column is missing, or an evaluated user has no truth item.
    """
    _check_k(k)
    require(truth, other=(USER_ID, ITEM_ID))
    pop = pl.DataFrame({USER_ID: users.cast(pl.Int64)}).unique().sort(USER_ID)
    rel = truth.select(pl.col(USER_ID).cast(pl.Int64), pl.col(ITEM_ID).cast(pl.Int64)).unique()
    rel = rel.join(pop, on=USER_ID, how="semi")
    if tail_items is not None:
        tails = pl.DataFrame({ITEM_ID: tail_items.cast(pl.Int64)}).unique()
        rel = rel.with_columns(pl.col(ITEM_ID).is_in(tails[ITEM_ID].implode()).alias("_tail"))
    else:
        rel = rel.with_columns(pl.lit(False).alias("_tail"))
    n_truth = rel.group_by(USER_ID).agg(
        pl.len().alias("n_truth"), pl.col("_tail").sum().alias("n_tail")
    )
    per = pop.join(n_truth, on=USER_ID, how="left").fill_null(0)
    lacking = per.filter(pl.col("n_truth") == 0)
    if lacking.height:
        msg = f"{lacking.height} evaluated user(s) have no truth item (e.g. user {lacking[0, 0]})"
        raise StageError(msg)
    hits = (
        _top(lists, k)
        .join(pop, on=USER_ID, how="semi")
        .unique([USER_ID, ITEM_ID], keep="first")
        .join(rel, on=[USER_ID, ITEM_ID], how="inner")
        .sort(USER_ID, RANK)
        .with_columns(pl.int_range(1, pl.len() + 1).over(USER_ID).alias("_nth"))
        .group_by(USER_ID)
        .agg(
            pl.len().alias("hits"),
            pl.col("_tail").sum().alias("tail_hits"),
            (1.0 / (pl.col(RANK).cast(pl.Float64) + 1.0).log(2)).sum().alias("dcg"),
            (pl.col("_nth").cast(pl.Float64) / pl.col(RANK).cast(pl.Float64)).sum().alias("ap"),
        )
    )
    per = per.join(hits, on=USER_ID, how="left").fill_null(0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])
    n = per["n_truth"].to_numpy().astype(np.int64)
    capped = np.minimum(n, k)
    h = per["hits"].to_numpy().astype(np.float64)
    n_tail = per["n_tail"].to_numpy().astype(np.float64)
    tail_recall = np.where(
        n_tail > 0, per["tail_hits"].to_numpy() / np.maximum(n_tail, 1.0), np.nan
    )
    return pl.DataFrame(
        {
            USER_ID: per[USER_ID],
            "n_truth": n,
            "hits": h.astype(np.int64),
            "recall_at_k": h / n,
            "ndcg_at_k": per["dcg"].to_numpy() / ideal[capped],
            "hit_rate_at_k": (h > 0).astype(np.float64),
            "map_at_k": per["ap"].to_numpy() / capped,
            "tail_recall_at_k": pl.Series(tail_recall, nan_to_null=True),
        }
    )


def mean_accuracy(per_user: pl.DataFrame) -> dict[str, float]:
    """Means of the :data:`ACCURACY_METRICS` columns (tail recall over users with tail truth)."""
    out: dict[str, float] = {}
    for name in ACCURACY_METRICS:
        value = per_user[name].drop_nulls().mean()
        out[name] = float(value) if isinstance(value, (int, float)) else float("nan")
    return out


def recall_curve(
    truth: pl.DataFrame,
    lists: pl.DataFrame,
    users: pl.Series,
    *,
    k: int,
    per_user: pl.DataFrame | None = None,
) -> list[float]:
    """Mean recall@j for j = 1..k (one pass: hits by rank, cumulated).

    ``per_user``: the users' :func:`per_user_accuracy` when the caller has it already.
    """
    per = per_user if per_user is not None else per_user_accuracy(truth, lists, users, k=k)
    n_truth = per.select(USER_ID, "n_truth")
    rel = truth.select(pl.col(USER_ID).cast(pl.Int64), pl.col(ITEM_ID).cast(pl.Int64)).unique()
    hit_ranks = (
        _top(lists, k)
        .unique([USER_ID, ITEM_ID], keep="first")
        .join(rel, on=[USER_ID, ITEM_ID], how="inner")
        .join(n_truth, on=USER_ID, how="inner")
        .group_by(RANK)
        .agg((1.0 / pl.col("n_truth").cast(pl.Float64)).sum().alias("w"))
    )
    by_rank = np.zeros(k + 1)
    for rank, w in hit_ranks.iter_rows():
        by_rank[int(rank)] += float(w)
    return [float(x) for x in np.cumsum(by_rank[1:]) / max(per.height, 1)]


def catalog_coverage_of_lists(lists: pl.DataFrame, *, k: int, catalog_size: int) -> float:
    """Distinct items in any top-k list / the ``catalog_size`` items that could be listed."""
    if catalog_size < 1:
        msg = f"catalog_size must be >= 1. Got {catalog_size!r} instead."
        raise ValueError(msg)
    return _top(lists, k)[ITEM_ID].n_unique() / catalog_size


def aplt(lists: pl.DataFrame, *, k: int, tail_items: pl.Series) -> float:
    """Average percentage of long-tail items: mean over lists of |L_u ∩ tail| / |L_u|.

    Abdollahpouri et al. 2019 (APLT). Users with an empty list do not count.
    """
    top = _top(lists, k)
    if top.height == 0:
        return float("nan")
    tails = tail_items.cast(pl.Int64).implode()
    # The membership test runs once over the rows, before the group_by: inside an
    # aggregation polars repeats the tail list for every group (8 GB and 20 s at 50k
    # users and 21k tail items). Sorted by user: the mean of a group_by's rows in
    # polars' arbitrary order differed in the last bit between runs of the same lists.
    share = (
        top.with_columns(pl.col(ITEM_ID).is_in(tails).cast(pl.Float64).alias("_tail"))
        .group_by(USER_ID)
        .agg(pl.col("_tail").mean())
        .sort(USER_ID)["_tail"]
    )
    return float(share.mean())  # type: ignore[arg-type]


def arp(lists: pl.DataFrame, *, k: int, popularity: pl.DataFrame) -> float:
    """Average recommendation popularity: mean over lists of the mean popularity of their items.

    Abdollahpouri et al. 2019 (ARP); ``popularity`` is ``item_id, popularity`` (for
    example views before the cutoff); items absent from it count 0.
    """
    require(popularity, numeric=("popularity",), other=(ITEM_ID,))
    top = _top(lists, k)
    if top.height == 0:
        return float("nan")
    pop = popularity.select(pl.col(ITEM_ID).cast(pl.Int64), pl.col("popularity").cast(pl.Float64))
    per = (
        top.join(pop, on=ITEM_ID, how="left")
        .group_by(USER_ID)
        .agg(pl.col("popularity").fill_null(0.0).mean())
        .sort(USER_ID)
    )
    return float(per["popularity"].mean())  # type: ignore[arg-type]


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal, towards 1 = concentrated)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.size == 0 or x.sum() <= 0:
        return float("nan")
    n = x.size
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * x.sum()))


def exposure_gini(lists: pl.DataFrame, *, k: int, catalog: pl.Series) -> float:
    """Gini of how often each catalog item is listed (items never listed count 0).

    As LensKit's ``ExposureGini`` with uniform position weight: 0 when every catalog
    item is listed equally often, near 1 when a few items take all the slots.
    """
    top = _top(lists, k)
    cat = pl.DataFrame({ITEM_ID: catalog.cast(pl.Int64)}).unique()
    counts = cat.join(top.group_by(ITEM_ID).len("n"), on=ITEM_ID, how="left").fill_null(0)
    return gini(counts["n"].to_numpy())


def novelty(lists: pl.DataFrame, *, k: int, item_users: pl.DataFrame, n_users: int) -> float:
    """Mean self-information -log2(p(i)) of listed items, averaged per list.

    ``p(i)`` is the share of the ``n_users`` users who interacted with item i before
    the cutoff (``item_users``: ``item_id, users``); an item nobody touched gets
    ``1 / n_users`` (the least popular observable share).
    """
    require(item_users, numeric=("users",), other=(ITEM_ID,))
    if n_users < 1:
        msg = f"n_users must be >= 1. Got {n_users!r} instead."
        raise ValueError(msg)
    top = _top(lists, k)
    if top.height == 0:
        return float("nan")
    iu = item_users.select(pl.col(ITEM_ID).cast(pl.Int64), pl.col("users").cast(pl.Float64))
    info = (
        top.join(iu, on=ITEM_ID, how="left")
        .with_columns(
            (-(pl.col("users").fill_null(1.0).clip(lower_bound=1.0) / n_users).log(2)).alias("si")
        )
        .group_by(USER_ID)
        .agg(pl.col("si").mean())
        .sort(USER_ID)
    )
    return float(info["si"].mean())  # type: ignore[arg-type]
