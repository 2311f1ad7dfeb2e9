"""Top-K per user, with an optional re-rank that guarantees a share of tail items."""

from __future__ import annotations

import math

import polars as pl

from longtail import schema as S

__all__ = ["top_k"]


def top_k(
    scored: pl.DataFrame,
    *,
    k: int,
    tail_min_share: float = 0.0,
    score: str = S.SCORE,
    bucket: str = S.POPULARITY_BUCKET,
) -> pl.DataFrame:
    """Keep the ``k`` best items per user, ranked 1..k by ``score`` (ties: lower item id first).

    With ``tail_min_share > 0`` each list holds at least ``ceil(k * share)`` tail
    items when the user has that many tail candidates: the best tail items are
    kept first, the remaining slots go to the best of the rest. The final order is
    by score either way.

    Parameters
    ----------
    scored
        One row per (user, candidate) with ``score`` and, for the re-rank, ``bucket``.
    k
        List length.
    tail_min_share
        Minimum share of tail items per list, in [0, 1].

    Returns
    -------
    pl.DataFrame
        The input columns plus ``rank`` (UInt32, 1 = best), at most ``k`` rows per user.
    """
    if k < 1:
        msg = f"k must be >= 1. Got {k!r} instead."
        raise ValueError(msg)
    if not 0.0 <= tail_min_share <= 1.0:
        msg = f"tail_min_share must be in [0, 1]. Got {tail_min_share!r} instead."
        raise ValueError(msg)
    order = [S.USER_ID, score, S.ITEM_ID]
    desc = [False, True, False]
    need = math.ceil(k * tail_min_share)
    is_tail = pl.col(bucket) == "tail"
    # Only rows scoring at least a user's k-th best score (ties kept) can be in the
    # list, and with the re-rank the tail rows scoring at least the user's need-th
    # best tail score: an item that fills a non-guaranteed slot is among the best
    # k - g of the rest, so fewer than k rows beat it. Sorting that superset gives
    # the same lists as sorting everything, at a quarter of the cost (200 candidates, K=20).
    value = pl.col(score)
    candidate = value >= value.top_k(k).min().over(S.USER_ID)
    if need > 0:
        best_tail = value.filter(is_tail).top_k(need).min().over(S.USER_ID)
        candidate = candidate | (is_tail & (value >= best_tail))
    ranked = scored.filter(candidate).sort(order, descending=desc)
    if need > 0:
        ranked = ranked.with_columns(
            (is_tail & (is_tail.cum_sum().over(S.USER_ID) <= need)).alias("_guaranteed")
        )
        guaranteed = ranked.filter(pl.col("_guaranteed"))
        n_guaranteed = guaranteed.group_by(S.USER_ID).len("_g")
        rest = (
            ranked.filter(~pl.col("_guaranteed"))
            .join(n_guaranteed, on=S.USER_ID, how="left")
            .with_columns(pl.col("_g").fill_null(0))
            .filter(pl.int_range(pl.len()).over(S.USER_ID) < k - pl.col("_g"))
            .drop("_g")
        )
        ranked = pl.concat([guaranteed, rest]).drop("_guaranteed").sort(order, descending=desc)
    rank = (pl.int_range(pl.len()).over(S.USER_ID) + 1).cast(pl.UInt32)
    return ranked.with_columns(rank.alias(S.RANK)).filter(pl.col(S.RANK) <= k)
