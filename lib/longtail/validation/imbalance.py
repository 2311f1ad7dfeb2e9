"""Imbalance metrics as pure Polars functions: label rates, Lorenz curve, Gini, head share.

Every function takes frames or series and returns plain values or small frames,
so the report, the gate and the tests share one definition of each number.
"""

from __future__ import annotations

import math
from typing import Final

import polars as pl

from longtail import schema as S
from longtail.errors import StageError

__all__ = [
    "OTHER",
    "event_label_rate",
    "event_label_rate_by",
    "gini",
    "item_popularity",
    "lorenz_curve",
    "popularity_buckets",
    "top_share",
    "training_label_rate_by",
    "users_without_positive",
]

# The group that collects every category outside the top N.
OTHER: Final = "other"


def _require(frame: pl.DataFrame, columns: list[str], *, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"{what} needs column(s) {missing}; got {frame.columns}"
        raise StageError(msg)


def _sorted_counts(counts: pl.Series) -> pl.Series:
    if counts.dtype.is_numeric() is False:
        msg = f"counts must be numeric. Got dtype {counts.dtype} instead."
        raise StageError(msg)
    if counts.null_count():
        msg = f"counts must not hold nulls. Got {counts.null_count()} null(s) instead."
        raise StageError(msg)
    values = counts.cast(pl.Float64).sort()
    if values.len() and values[0] < 0:
        msg = f"counts must be >= 0. Got {values[0]!r} instead."
        raise StageError(msg)
    return values


def lorenz_curve(counts: pl.Series) -> pl.DataFrame:
    """Return the Lorenz curve of a popularity distribution.

    Parameters
    ----------
    counts
        Non-negative counts, one per item (zeros included: unseen catalogue items).

    Returns
    -------
    pl.DataFrame
        ``item_share`` and ``event_share``, from (0, 0) to (1, 1), items sorted
        from least to most popular; n + 1 rows for n items.

    Raises
    ------
    StageError
        The counts are empty, negative, null, not numeric, or all zero.
    """
    values = _sorted_counts(counts)
    n = values.len()
    total = float(values.sum()) if n else 0.0
    if n == 0 or total == 0:
        msg = f"a Lorenz curve needs at least one positive count. Got {n} item(s), total {total}."
        raise StageError(msg)
    cum = pl.concat([pl.Series([0.0]), values.cum_sum()]) / total
    share = pl.Series(range(n + 1), dtype=pl.Float64) / n
    return pl.DataFrame({"item_share": share, "event_share": cum})


def gini(counts: pl.Series) -> float:
    """Return the Gini coefficient of item popularity (0 = uniform, -> 1 = one item has all).

    ``G = 2 * sum(i * x_i) / (n * sum(x)) - (n + 1) / n`` with ``x`` sorted
    ascending and ``i`` from 1, which equals one minus twice the area under the
    Lorenz curve.

    Parameters
    ----------
    counts
        Non-negative counts, one per item.

    Raises
    ------
    StageError
        As :func:`lorenz_curve`.
    """
    values = _sorted_counts(counts)
    n = values.len()
    total = float(values.sum()) if n else 0.0
    if n == 0 or total == 0:
        msg = f"the Gini coefficient needs at least one positive count. Got {n} item(s)."
        raise StageError(msg)
    ranks = pl.Series(range(1, n + 1), dtype=pl.Float64)
    weighted = float((ranks * values).sum())
    return 2.0 * weighted / (n * total) - (n + 1) / n


def top_share(counts: pl.Series, *, fraction: float) -> float:
    """Return the share of all events that fall on the top ``fraction`` of items.

    The top group has ``ceil(fraction * n)`` items (at least one).

    Raises
    ------
    StageError
        ``fraction`` is not in (0, 1], or as :func:`lorenz_curve`.
    """
    if not 0 < fraction <= 1:
        msg = f"fraction must be in (0, 1]. Got {fraction!r} instead."
        raise StageError(msg)
    values = _sorted_counts(counts)
    n = values.len()
    total = float(values.sum()) if n else 0.0
    if n == 0 or total == 0:
        msg = f"a top share needs at least one positive count. Got {n} item(s)."
        raise StageError(msg)
    k = max(1, math.ceil(fraction * n))
    return float(values.tail(k).sum()) / total


def item_popularity(events: pl.DataFrame, *, catalogue: pl.Series | None = None) -> pl.DataFrame:
    """Count events per item, with zero for catalogue items that have none.

    Parameters
    ----------
    events
        Canonical events (needs ``item_id``).
    catalogue
        Every known item id (duplicates allowed); items absent from ``events`` get 0.

    Returns
    -------
    pl.DataFrame
        ``item_id`` and ``events`` (UInt32 -> Int64), sorted by count descending.
    """
    _require(events, [S.ITEM_ID], what="item_popularity")
    counts = events.group_by(S.ITEM_ID).agg(pl.len().cast(pl.Int64).alias("events"))
    if catalogue is not None:
        known = pl.DataFrame({S.ITEM_ID: catalogue.cast(pl.Int64)}).unique()
        counts = known.join(counts, on=S.ITEM_ID, how="full", coalesce=True).with_columns(
            pl.col("events").fill_null(0)
        )
    return counts.sort(["events", S.ITEM_ID], descending=[True, False])


def popularity_buckets(
    popularity: pl.DataFrame, *, head_share: float, torso_share: float
) -> pl.DataFrame:
    """Assign head/torso/tail by cumulative share of events, most popular first.

    An item is ``head`` while the cumulative share *before* it is below
    ``head_share``, ``torso`` while below ``torso_share``, else ``tail``.

    Parameters
    ----------
    popularity
        ``item_id`` and ``events`` as from :func:`item_popularity`.
    head_share, torso_share
        Cumulative share thresholds, ``0 < head_share < torso_share <= 1``.

    Returns
    -------
    pl.DataFrame
        ``item_id`` and ``item_popularity_bucket``.
    """
    if not 0 < head_share < torso_share <= 1:
        msg = (
            "need 0 < head_share < torso_share <= 1. "
            f"Got {head_share!r} and {torso_share!r} instead."
        )
        raise StageError(msg)
    _require(popularity, [S.ITEM_ID, "events"], what="popularity_buckets")
    ranked = popularity.sort(["events", S.ITEM_ID], descending=[True, False])
    total = ranked["events"].sum() or 1
    before = (pl.col("events").cum_sum() - pl.col("events")) / total
    bucket = (
        pl.when(before < head_share)
        .then(pl.lit("head"))
        .when(before < torso_share)
        .then(pl.lit("torso"))
        .otherwise(pl.lit("tail"))
    )
    return ranked.select(S.ITEM_ID, bucket.alias(S.POPULARITY_BUCKET))


def event_label_rate(events: pl.DataFrame, *, target_event: str = "purchase") -> float | None:
    """Return target events / views of canonical events, or None when there is no view."""
    _require(events, [S.EVENT_TYPE], what="event_label_rate")
    views = events.filter(pl.col(S.EVENT_TYPE) == "view").height
    targets = events.filter(pl.col(S.EVENT_TYPE) == target_event).height
    return targets / views if views else None


def _top_groups(frame: pl.DataFrame, *, by: str, top: int | None) -> pl.DataFrame:
    if top is None or frame.height <= top:
        return frame.with_columns(pl.col(by).cast(pl.String))
    ranked = frame.sort(["rows", by], descending=[True, False])
    head = ranked.head(top).with_columns(pl.col(by).cast(pl.String))
    rest = ranked.tail(ranked.height - top)
    other = pl.DataFrame(
        {
            by: [OTHER],
            "rows": [int(rest["rows"].sum())],
            "positives": [int(rest["positives"].sum())],
        }
    )
    return pl.concat([head, other.cast(head.schema)])


def event_label_rate_by(
    events: pl.DataFrame,
    *,
    by: str,
    target_event: str = "purchase",
    top: int | None = None,
) -> pl.DataFrame:
    """Target events / views per group of canonical events.

    Parameters
    ----------
    events
        Events with ``event_type`` and the ``by`` column.
    by
        The group column (e.g. ``category_id`` or ``item_popularity_bucket``).
    target_event
        The event counted as a positive.
    top
        Keep the ``top`` groups with the most views and pool the rest as ``"other"``.

    Returns
    -------
    pl.DataFrame
        ``by`` (as String), ``rows`` (views), ``positives`` and ``label_rate``,
        most viewed first (``other`` last).
    """
    _require(events, [S.EVENT_TYPE, by], what="event_label_rate_by")
    grouped = events.group_by(by).agg(
        (pl.col(S.EVENT_TYPE) == "view").sum().cast(pl.Int64).alias("rows"),
        (pl.col(S.EVENT_TYPE) == target_event).sum().cast(pl.Int64).alias("positives"),
    )
    grouped = grouped.filter(pl.col("rows") > 0).sort(["rows", by], descending=[True, False])
    return _with_rate(_top_groups(grouped, by=by, top=top))


def training_label_rate_by(rows: pl.DataFrame, *, by: str, top: int | None = None) -> pl.DataFrame:
    """Mean label per group of labelled training rows.

    Returns
    -------
    pl.DataFrame
        ``by`` (as String), ``rows``, ``positives`` and ``label_rate``, largest first.
    """
    _require(rows, [S.LABEL, by], what="training_label_rate_by")
    grouped = (
        rows.group_by(by)
        .agg(
            pl.len().cast(pl.Int64).alias("rows"),
            pl.col(S.LABEL).cast(pl.Int64).sum().alias("positives"),
        )
        .sort(["rows", by], descending=[True, False])
    )
    return _with_rate(_top_groups(grouped, by=by, top=top))


def _with_rate(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns((pl.col("positives") / pl.col("rows")).alias("label_rate"))


def users_without_positive(frame: pl.DataFrame, *, positive: pl.Expr) -> tuple[int, int]:
    """Count users with no positive among users with at least one row.

    Parameters
    ----------
    frame
        Rows with ``user_id``.
    positive
        A boolean expression marking a positive row, e.g. ``pl.col("label") == 1``
        or ``pl.col("event_type") == "purchase"``.

    Returns
    -------
    tuple of int
        (users without a positive, all users).
    """
    _require(frame, [S.USER_ID], what="users_without_positive")
    per_user = frame.group_by(S.USER_ID).agg(positive.any().alias("any"))
    return int((~per_user["any"]).sum()), per_user.height
