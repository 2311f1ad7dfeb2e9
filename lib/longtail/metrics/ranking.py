"""List metrics of scored training rows: each list is one user's rows at one time.

A *list* is the rows of one user at one ``event_time`` (the user alone when the
frame has no ``event_time``). On candidate rows (``[labels] population =
"candidates"``) a list is the candidate set the scoring job would have served at a
snapshot time, labelled by what the user then did, so ``recall_at_k`` is the
backtest's recall at every snapshot time with the truth restricted to the
candidates (random scores reach about k / 200). On view rows the lists re-rank the
items each user viewed: random scores reach recall@10 = 0.72 on the demo, so there
they are no measure of recommendation quality (the backtest is, ``docs/evaluation.md``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from longtail.errors import StageError
from longtail.metrics._checks import require
from longtail.schema import (
    EVENT_TIME,
    ITEM_ID,
    LABEL,
    POPULARITY_BUCKET,
    PROBABILITY,
    RANK,
    USER_ID,
)

__all__ = [
    "LIST",
    "catalog_coverage",
    "map_at_k",
    "ndcg_at_k",
    "ranking_report",
    "recall_at_k",
    "tail_share",
    "top_k",
    "with_lists",
]


#: The list id column :func:`with_lists` adds.
LIST = "_list"


def with_lists(frame: pl.DataFrame, *, user: str = USER_ID) -> pl.DataFrame:
    """Add :data:`LIST`: one id per (user, ``event_time``), or per user without a time."""
    keys = [user, EVENT_TIME] if EVENT_TIME in frame.columns else [user]
    require(frame, other=tuple(keys))
    return frame.with_columns(pl.struct(keys).rank("dense").cast(pl.Int64).alias(LIST))


def _check_k(k: int) -> None:
    if k < 1:
        msg = f"k must be >= 1. Got {k!r} instead."
        raise ValueError(msg)


def top_k(
    frame: pl.DataFrame, *, k: int, user: str = USER_ID, score: str = PROBABILITY
) -> pl.DataFrame:
    """Return each user's ``k`` highest-scored rows with a 1-based ``rank`` column.

    Ties are broken by the order of rows in ``frame`` (stable sort).
    """
    _check_k(k)
    require(frame, numeric=(score,), other=(user,))
    return (
        frame.with_row_index("_order")
        .sort([user, score, "_order"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over(user).alias(RANK))
        .filter(pl.col(RANK) <= k)
        .drop("_order")
    )


def _per_user(frame: pl.DataFrame, *, k: int, user: str, label: str, score: str) -> pl.DataFrame:
    require(frame, numeric=(label, score), other=(user,))
    _check_k(k)
    if user != LIST:
        frame, user = with_lists(frame, user=user), LIST
    ranked = top_k(frame, k=k, user=user, score=score)
    totals = frame.group_by(user).agg(pl.col(label).cast(pl.Float64).sum().alias("n_pos"))
    totals = totals.filter(pl.col("n_pos") > 0)
    if totals.height == 0:
        msg = f"ranking metric needs at least one user with a positive {label!r}"
        raise StageError(msg)
    y = pl.col(label).cast(pl.Float64)
    hits = ranked.group_by(user).agg(
        y.sum().alias("hits"),
        (y / (pl.col(RANK) + 1).cast(pl.Float64).log(2)).sum().alias("dcg"),
        (y * y.cum_sum() / pl.col(RANK)).sum().alias("ap_sum"),
    )
    # cum_sum above must run in rank order within the user: ``ranked`` is sorted so.
    # Sorted by list: a mean over group_by rows in polars' arbitrary order moved the
    # metric's last bit between calls on the same frame.
    return totals.join(hits, on=user, how="left").fill_null(0.0).sort(user)


def recall_at_k(
    frame: pl.DataFrame,
    *,
    k: int,
    user: str = USER_ID,
    label: str = LABEL,
    score: str = PROBABILITY,
) -> float:
    """Mean over lists with a positive of (positives in their top-k) / (their positives).

    Raises
    ------
    StageError
        A column is missing or no list has a positive.
    """
    return _recall(_per_user(frame, k=k, user=user, label=label, score=score))


def _recall(per: pl.DataFrame) -> float:
    return float((per["hits"] / per["n_pos"]).mean())  # type: ignore[arg-type]


def _ndcg(per: pl.DataFrame, k: int) -> float:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    cum = np.concatenate([[0.0], np.cumsum(discounts)])
    ideal = cum[np.minimum(per["n_pos"].to_numpy().astype(np.int64), k)]
    return float(np.mean(per["dcg"].to_numpy() / ideal))


def _map(per: pl.DataFrame, k: int) -> float:
    denom = np.minimum(per["n_pos"].to_numpy(), k)
    return float(np.mean(per["ap_sum"].to_numpy() / denom))


def ndcg_at_k(
    frame: pl.DataFrame,
    *,
    k: int,
    user: str = USER_ID,
    label: str = LABEL,
    score: str = PROBABILITY,
) -> float:
    """Mean binary NDCG@k over lists with a positive (ideal DCG puts all positives first)."""
    return _ndcg(_per_user(frame, k=k, user=user, label=label, score=score), k)


def map_at_k(
    frame: pl.DataFrame,
    *,
    k: int,
    user: str = USER_ID,
    label: str = LABEL,
    score: str = PROBABILITY,
) -> float:
    """Mean average precision@k: sum of precision at each hit / min(positives, k), averaged."""
    return _map(_per_user(frame, k=k, user=user, label=label, score=score), k)


def catalog_coverage(
    frame: pl.DataFrame,
    *,
    k: int,
    catalog_size: int,
    user: str = USER_ID,
    item: str = ITEM_ID,
    score: str = PROBABILITY,
) -> float:
    """Share of the catalog's ``catalog_size`` items that appear in some user's top-k."""
    _check_catalog(catalog_size)
    require(frame, other=(item,))
    return _coverage(top_k(frame, k=k, user=user, score=score), item, catalog_size)


def _check_catalog(catalog_size: int) -> None:
    if catalog_size < 1:
        msg = f"catalog_size must be >= 1. Got {catalog_size!r} instead."
        raise ValueError(msg)


def _coverage(ranked: pl.DataFrame, item: str, catalog_size: int) -> float:
    return ranked[item].n_unique() / catalog_size


def tail_share(
    frame: pl.DataFrame,
    *,
    k: int,
    user: str = USER_ID,
    bucket: str = POPULARITY_BUCKET,
    score: str = PROBABILITY,
    tail: str = "tail",
) -> float:
    """Share of all top-k slots (over users) taken by ``tail`` items."""
    require(frame, other=(bucket,))
    return _tail_share(top_k(frame, k=k, user=user, score=score), bucket, tail)


def _tail_share(ranked: pl.DataFrame, bucket: str, tail: str) -> float:
    if ranked.height == 0:
        return float("nan")
    return float((ranked[bucket] == tail).mean())  # type: ignore[arg-type]


def ranking_report(
    frame: pl.DataFrame,
    *,
    k: int,
    catalog_size: int,
    user: str = USER_ID,
    item: str = ITEM_ID,
    label: str = LABEL,
    score: str = PROBABILITY,
    bucket: str = POPULARITY_BUCKET,
) -> dict[str, float]:
    """Every metric of this module at ``k``, from one ranking of the lists and one of the users.

    The same values as :func:`recall_at_k`, :func:`ndcg_at_k`, :func:`map_at_k`
    (over lists), :func:`catalog_coverage` and :func:`tail_share` (over users)
    called one by one, which rank the frame five times: on the 600k validation
    and test rows of the train step that was 2 of its 12 s.

    Returns
    -------
    dict
        ``recall``, ``ndcg``, ``map``, ``coverage`` and ``tail_share``.

    Raises
    ------
    StageError
        A column is missing or no list has a positive.
    """
    _check_catalog(catalog_size)
    require(frame, numeric=(label, score), other=(user, item, bucket))
    # Only the columns read: the rankings sort whole rows, and the train step's
    # splits carry 30-odd feature columns and a list of recent items.
    keys = [user, item, label, score, bucket]
    keys += [EVENT_TIME] if EVENT_TIME in frame.columns else []
    frame = frame.select(list(dict.fromkeys(keys)))
    per = _per_user(frame, k=k, user=user, label=label, score=score)
    by_user = top_k(frame, k=k, user=user, score=score)
    return {
        "recall": _recall(per),
        "ndcg": _ndcg(per, k),
        "map": _map(per, k),
        "coverage": _coverage(by_user, item, catalog_size),
        "tail_share": _tail_share(by_user, bucket, "tail"),
    }
