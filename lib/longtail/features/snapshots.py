"""Daily user and item feature snapshots, computed strictly from events before each snapshot.

A snapshot at ``event_timestamp`` = D 00:00 UTC summarises the events with
``event_time < D``. Each entity gets one snapshot per day from the day after its
first activity up to the cutoff, so a Feast view with a TTL of a day or more
always finds one. Everything is vectorized: one pass of group-bys, cumulative
sums over a dense (entity x day) grid, and as-of joins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from longtail import schema as S
from longtail.config import FeaturesConfig
from longtail.errors import StageError
from longtail.schema import item_feature_schema, user_feature_schema

__all__ = [
    "FeatureTables",
    "build_features",
    "build_item_features",
    "build_user_features",
    "build_user_features_in_parts",
    "item_feature_schema",
    "user_feature_schema",
]

DAY = dt.timedelta(days=1)
_DAY = "__day"


@dataclass(frozen=True)
class FeatureTables:
    """User and item snapshots, the two Feast sources."""

    user: pl.DataFrame
    item: pl.DataFrame


def _cutoff(until: dt.date) -> dt.datetime:
    return dt.datetime(until.year, until.month, until.day, tzinfo=dt.UTC)


def _prior(cfg: FeaturesConfig) -> tuple[float, float]:
    a = cfg.smoothing_prior_rate * cfg.smoothing_prior_strength
    return a, cfg.smoothing_prior_strength


def _grid(first: pl.DataFrame, key: str, last_day: dt.datetime) -> pl.DataFrame:
    """One row per (key, activity day) from the key's first day to ``last_day``."""
    return (
        first.filter(pl.col(_DAY) <= last_day)
        .with_columns(
            pl.datetime_ranges(pl.col(_DAY), pl.lit(last_day, dtype=S.TIME), "1d").alias(_DAY)
        )
        .explode(_DAY)
        .with_columns(pl.col(_DAY).cast(S.TIME))
    )


# The grids are sorted by key then day, so each key's rows are one run. The helpers
# below compute per-key cumulative values in one pass over the whole column, with the
# key's start found by comparing neighbours. Polars' ``.over(key)`` groups per
# expression: both snapshot tables at 10M events took 50.6 s that way and 34.9 s this
# way, at 0.46 GB more peak memory (benchmarks/snapshot_memory.py, docs/scale.md).


def _first_of_key(key: str) -> pl.Expr:
    """True on each key's first row of a grid sorted by key."""
    k = pl.col(key)
    return (k != k.shift(1)).fill_null(True)


def _cum_within(col: str, key: str) -> pl.Expr:
    """``col.cum_sum().over(key)`` on a grid sorted by key (``col`` without nulls)."""
    c = pl.col(col).cum_sum()
    before_key = pl.when(_first_of_key(key)).then(c - pl.col(col)).forward_fill()
    return c - before_key


def _window(col: str, days: int, key: str) -> pl.Expr:
    """Sum of ``col`` over the last ``days`` grid rows of each key (the grid is dense in days).

    The grid must be sorted by key then day and ``col`` have no nulls.
    """
    c = pl.col(col).cum_sum()
    # The row ``days`` back is the same key's exactly when the key has that many rows
    # before this one; otherwise the window holds all of the key's rows so far.
    same_key = pl.col(key) == pl.col(key).shift(days)
    return pl.when(same_key).then(c - c.shift(days)).otherwise(_cum_within(col, key))


def _forward_fill_within(col: str, key: str) -> pl.Expr:
    """``col.forward_fill().over(key)`` on a grid sorted by key."""
    k = pl.col(key)
    owner = pl.when(pl.col(col).is_not_null()).then(k).forward_fill()
    return pl.when(owner == k).then(pl.col(col).forward_fill())


def _cum_max_within(col: str, key: str) -> pl.Expr:
    """``col.cum_max().over(key)`` on a grid sorted by key (``col`` non-negative integers).

    Each key's values are lifted above every earlier key's (``run * (max + 1)``), so a
    running maximum of the whole column never carries one key's maximum into the next.
    """
    run = _first_of_key(key).cum_sum().cast(pl.Int64)
    lift = run * (pl.col(col).max().cast(pl.Int64) + 1)
    return (pl.col(col).cast(pl.Int64) + lift).cum_max() - lift


def _events_before(events: pl.DataFrame, cutoff: dt.datetime) -> pl.DataFrame:
    missing = [c for c in (S.EVENT_TIME, S.USER_ID, S.ITEM_ID, S.EVENT_TYPE) if c not in events]
    if missing:
        msg = f"events lack column(s) {missing}; have {events.columns}"
        raise StageError(msg)
    return events.filter(pl.col(S.EVENT_TIME) < cutoff).with_columns(
        pl.col(S.EVENT_TIME).dt.truncate("1d").alias(_DAY)
    )


def _keep_history(frame: pl.DataFrame, cfg: FeaturesConfig, cutoff: dt.datetime) -> pl.DataFrame:
    if cfg.history_days is None:
        return frame
    first = cutoff - dt.timedelta(days=cfg.history_days - 1)
    return frame.filter(pl.col(S.SNAPSHOT_TIME) >= first)


def _recent_items(views: pl.DataFrame, grid: pl.DataFrame, cum_views: str, n: int) -> pl.Series:
    """Last ``n`` viewed item ids per grid row (most recent last), from cumulative view counts."""
    ordered = views.select(S.USER_ID, S.ITEM_ID, S.EVENT_TIME).with_row_index("__src")
    ordered = ordered.sort([S.USER_ID, S.EVENT_TIME, "__src"])
    items = ordered[S.ITEM_ID].to_numpy()
    starts = (
        ordered.with_row_index("__g").group_by(S.USER_ID).agg(pl.col("__g").min().alias("__start"))
    )
    pos = grid.select(S.USER_ID, cum_views).join(starts, on=S.USER_ID, how="left")
    start = pos["__start"].fill_null(0).to_numpy().astype(np.int64)
    count = pos[cum_views].to_numpy().astype(np.int64)
    length = np.minimum(count, n)
    lo = start + count - length
    offsets = np.zeros(len(length) + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    idx = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], length)
    idx += np.repeat(lo, length)
    values = pa.array(items[idx] if len(idx) else np.array([], dtype=np.int64), pa.int64())
    arr = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values)
    out = pl.Series(S.USER_RECENT_ITEMS, arr)
    return out.cast(pl.List(pl.Int64()))


def _item_category_at_event(events: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Attach the item's category as of each event (item rows valid at or before it)."""
    versions = items.select(S.ITEM_ID, S.VALID_FROM, S.CATEGORY_ID).sort(S.VALID_FROM)
    return (
        events.with_row_index("__src")
        .sort(S.EVENT_TIME)
        .join_asof(
            versions,
            left_on=S.EVENT_TIME,
            right_on=S.VALID_FROM,
            by=S.ITEM_ID,
            strategy="backward",
            check_sortedness=False,
        )
        .sort("__src")
        .drop("__src", S.VALID_FROM)
    )


def _category_days(views: pl.DataFrame) -> pl.DataFrame:
    """Per user and day: categories viewed for the first time, the top category's views so far.

    ``__new_cats`` (categories first viewed that day), ``__top`` (views of the user's
    most viewed category up to that day, within the day's categories) and
    ``__cat_views`` (views with a category that day).
    """
    return (
        views.filter(pl.col(S.CATEGORY_ID).is_not_null())
        .group_by(S.USER_ID, S.CATEGORY_ID, _DAY)
        .agg(pl.len().cast(pl.Int64).alias("__n"))
        .sort(S.USER_ID, S.CATEGORY_ID, _DAY)
        .with_columns(pl.col("__n").cum_sum().over(S.USER_ID, S.CATEGORY_ID).alias("__cum"))
        .group_by(S.USER_ID, _DAY)
        .agg(
            (pl.col("__cum") == pl.col("__n")).sum().cast(pl.Int64).alias("__new_cats"),
            pl.col("__cum").max().alias("__top"),
            pl.col("__n").sum().alias("__cat_views"),
        )
    )


def build_user_features(
    events: pl.DataFrame, items: pl.DataFrame, cfg: FeaturesConfig, *, until: dt.date
) -> pl.DataFrame:
    """Daily user snapshots up to and including ``until`` 00:00 UTC.

    Parameters
    ----------
    events, items
        Canonical tables (see :mod:`longtail.schema`).
    cfg
        Windows, smoothing prior, history and recent-items length.
    until
        The last snapshot date; only events before ``until`` 00:00 UTC are used.

    Returns
    -------
    pl.DataFrame
        :func:`user_feature_schema` columns, sorted by snapshot time then user.
    """
    cutoff = _cutoff(until)
    ev = _events_before(events, cutoff)
    kind = pl.col(S.EVENT_TYPE)
    daily = ev.group_by(S.USER_ID, _DAY).agg(
        (kind == "view").sum().cast(pl.Int64).alias("views"),
        (kind == "cart").sum().cast(pl.Int64).alias("carts"),
        (kind == "purchase").sum().cast(pl.Int64).alias("purchases"),
        pl.col(S.EVENT_TIME).filter(kind == "purchase").max().alias("__last_purchase"),
    )
    views = _item_category_at_event(ev.filter(kind == "view"), items)
    per_cat = _category_days(views)
    first = daily.group_by(S.USER_ID).agg(pl.col(_DAY).min())
    grid = (
        _grid(first, S.USER_ID, cutoff - DAY)
        .join(daily, on=[S.USER_ID, _DAY], how="left")
        .join(per_cat, on=[S.USER_ID, _DAY], how="left")
        .with_columns(
            pl.col("views", "carts", "purchases", "__new_cats", "__cat_views", "__top").fill_null(0)
        )
        .sort(S.USER_ID, _DAY)
    )
    snap = pl.col(_DAY) + DAY
    a, strength = _prior(cfg)
    big = max(cfg.user_windows_days)
    grid = grid.with_columns(
        *(
            _window(ev_name, w, S.USER_ID).alias(S.window_column("user", ev_name, w))
            for w in cfg.user_windows_days
            for ev_name in ("views", "carts", "purchases")
        ),
        _window("views", big, S.USER_ID).alias("__conv_views"),
        _window("purchases", big, S.USER_ID).alias("__conv_purchases"),
        _cum_within("views", S.USER_ID).alias("__cum_views"),
        _forward_fill_within("__last_purchase", S.USER_ID).alias("__last_purchase"),
        _cum_within("__new_cats", S.USER_ID).alias(S.USER_DISTINCT_CATEGORIES),
        _cum_max_within("__top", S.USER_ID).alias("__top"),
        _cum_within("__cat_views", S.USER_ID).alias("__cat_views"),
        snap.alias(S.SNAPSHOT_TIME),
    ).with_columns(
        ((pl.col("__conv_purchases") + a) / (pl.col("__conv_views") + strength)).alias(
            S.USER_CONVERSION_RATE
        ),
        ((pl.col(S.SNAPSHOT_TIME) - pl.col("__last_purchase")).dt.total_microseconds() / 86_400e6)
        .cast(pl.Float64)
        .alias(S.USER_DAYS_SINCE_LAST_PURCHASE),
        pl.when(pl.col("__cat_views") > 0)
        .then(pl.col("__top") / pl.col("__cat_views"))
        .cast(pl.Float64)
        .alias(S.USER_TOP_CATEGORY_SHARE),
    )
    if cfg.recent_items:
        grid = grid.with_columns(_recent_items(views, grid, "__cum_views", cfg.recent_items))
    schema = user_feature_schema(cfg)
    out = grid.select(pl.col(c).cast(t) for c, t in schema.items())
    return _keep_history(out, cfg, cutoff).sort(S.SNAPSHOT_TIME, S.USER_ID)


def build_item_features(
    events: pl.DataFrame, items: pl.DataFrame, cfg: FeaturesConfig, *, until: dt.date
) -> pl.DataFrame:
    """Daily item snapshots up to and including ``until`` 00:00 UTC.

    Item properties (price, category, availability) are those of the item row
    valid strictly before the snapshot time. Popularity is ranked over the
    longest item window: head items together hold ``head_share`` of the views,
    torso up to ``torso_share``, the rest (and items without views) are tail.

    Returns
    -------
    pl.DataFrame
        :func:`item_feature_schema` columns, sorted by snapshot time then item.
    """
    cutoff = _cutoff(until)
    ev = _events_before(events, cutoff)
    kind = pl.col(S.EVENT_TYPE)
    daily = ev.group_by(S.ITEM_ID, _DAY).agg(
        (kind == "view").sum().cast(pl.Int64).alias("views"),
        (kind == "purchase").sum().cast(pl.Int64).alias("purchases"),
    )
    first_event = ev.group_by(S.ITEM_ID).agg(pl.col(S.EVENT_TIME).min().alias("__first_seen"))
    first = _item_first_days(ev, daily, items, cfg, cutoff=cutoff)
    big = max(cfg.item_windows_days)
    pop = S.window_column("item", "views", big)
    grid = (
        _grid(first, S.ITEM_ID, cutoff - DAY)
        .join(daily, on=[S.ITEM_ID, _DAY], how="left")
        .join(first_event, on=S.ITEM_ID, how="left")
        .with_columns(pl.col("views", "purchases").fill_null(0))
        .sort(S.ITEM_ID, _DAY)
        .with_columns(
            *(
                _window(ev_name, w, S.ITEM_ID).alias(S.window_column("item", ev_name, w))
                for w in cfg.item_windows_days
                for ev_name in ("views", "purchases")
            ),
            _window("views", big, S.ITEM_ID).alias("__conv_views"),
            _window("purchases", big, S.ITEM_ID).alias("__conv_purchases"),
            (pl.col(_DAY) + DAY).alias(S.SNAPSHOT_TIME),
        )
    )
    if pop not in grid.columns:  # longest window is always computed above
        msg = f"internal: missing popularity column {pop!r}"
        raise StageError(msg)
    grid = _with_item_properties(_with_popularity(grid, cfg, pop=pop), items)
    schema = item_feature_schema(cfg)
    out = grid.select(pl.col(c).cast(t) for c, t in schema.items())
    return _keep_history(out, cfg, cutoff).sort(S.SNAPSHOT_TIME, S.ITEM_ID)


def _item_first_days(
    ev: pl.DataFrame,
    daily: pl.DataFrame,
    items: pl.DataFrame,
    cfg: FeaturesConfig,
    *,
    cutoff: dt.datetime,
) -> pl.DataFrame:
    """Each item's first snapshot day: its first event or its listing, whichever is first."""
    listed = items.filter(pl.col(S.VALID_FROM) < cutoff).select(
        S.ITEM_ID, pl.col(S.VALID_FROM).dt.truncate("1d").alias(_DAY)
    )
    # A listing older than the longest window before the first event says nothing a
    # window can see: such items count from the first event that names them.
    # RetailRocket lists 229k items at the epoch, 6.5k of them seen; a grid of every
    # listed item from the epoch held billions of rows. Whether an item has a snapshot
    # at T still depends only on data before T.
    start = ev[_DAY].min()
    if isinstance(start, dt.datetime):
        horizon = dt.timedelta(days=max(cfg.item_windows_days))
        listed = listed.filter(pl.col(_DAY) >= start - horizon)
    return (
        pl.concat([daily.select(S.ITEM_ID, _DAY), listed])
        .group_by(S.ITEM_ID)
        .agg(pl.col(_DAY).min())
    )


def _with_popularity(grid: pl.DataFrame, cfg: FeaturesConfig, *, pop: str) -> pl.DataFrame:
    """Add the popularity rank and bucket, the smoothed conversion rate and the item's age.

    Ranked per snapshot over ``pop`` (the longest view window): head items together
    hold ``head_share`` of the views, torso up to ``torso_share``, the rest are tail.
    """
    a, strength = _prior(cfg)
    share = pl.col("__cum") / pl.col("__total")
    own = pl.col(pop) / pl.col("__total")
    return (
        grid.sort([S.SNAPSHOT_TIME, pop, S.ITEM_ID], descending=[False, True, False])
        .with_columns(
            (pl.int_range(pl.len()).over(S.SNAPSHOT_TIME) + 1)
            .cast(pl.Int64)
            .alias(S.ITEM_POPULARITY_RANK),
            pl.col(pop).cum_sum().over(S.SNAPSHOT_TIME).alias("__cum"),
            pl.col(pop).sum().over(S.SNAPSHOT_TIME).alias("__total"),
        )
        .with_columns(
            pl.when((pl.col(pop) > 0) & (share - own < cfg.head_share))
            .then(pl.lit("head"))
            .when((pl.col(pop) > 0) & (share - own < cfg.torso_share))
            .then(pl.lit("torso"))
            .otherwise(pl.lit("tail"))
            .alias(S.POPULARITY_BUCKET),
            ((pl.col("__conv_purchases") + a) / (pl.col("__conv_views") + strength)).alias(
                S.ITEM_CONVERSION_RATE
            ),
            # Listed items may be seen for the first time only after the snapshot.
            pl.when(pl.col("__first_seen") < pl.col(S.SNAPSHOT_TIME))
            .then(
                (pl.col(S.SNAPSHOT_TIME) - pl.col("__first_seen")).dt.total_microseconds()
                / 86_400e6
            )
            .cast(pl.Float64)
            .alias(S.ITEM_DAYS_SINCE_FIRST_SEEN),
        )
    )


def _with_item_properties(grid: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Add price, category and availability of the item row valid strictly before each snapshot."""
    props = items.select(
        S.ITEM_ID,
        S.VALID_FROM,
        pl.col(S.PRICE).alias(S.ITEM_PRICE),
        pl.col(S.CATEGORY_ID).alias(S.ITEM_CATEGORY),
        pl.col(S.AVAILABLE).alias(S.ITEM_AVAILABLE),
    ).sort(S.VALID_FROM)
    return grid.sort(S.SNAPSHOT_TIME).join_asof(
        props,
        left_on=S.SNAPSHOT_TIME,
        right_on=S.VALID_FROM,
        by=S.ITEM_ID,
        strategy="backward",
        allow_exact_matches=False,  # a property set at the snapshot time is not yet seen
        check_sortedness=False,
    )


def build_user_features_in_parts(
    events: pl.DataFrame,
    items: pl.DataFrame,
    cfg: FeaturesConfig,
    *,
    until: dt.date,
    parts: int,
) -> pl.DataFrame:
    """:func:`build_user_features` over ``parts`` disjoint buckets of users: the same table.

    Every user feature reads only that user's own events (and the items' categories),
    so computing the (user x day) grid one hash bucket of users at a time gives the
    same rows, in the same order after the final sort, while the grid's intermediate
    columns (windows, cumulative sums, the recent-items lists) are held for one
    bucket at a time: the features step's peak memory falls towards the output's.
    """
    if parts <= 1:
        return build_user_features(events, items, cfg, until=until)
    cutoff = _cutoff(until)
    bucket = pl.col(S.USER_ID).hash(seed=0) % parts
    frames = []
    for part in range(parts):
        mine = events.filter(bucket == part)
        if mine.filter(pl.col(S.EVENT_TIME) < cutoff).is_empty():
            continue  # no user of this bucket has a snapshot yet
        frames.append(build_user_features(mine, items, cfg, until=until))
    if not frames:
        return build_user_features(events, items, cfg, until=until)
    return pl.concat(frames).sort(S.SNAPSHOT_TIME, S.USER_ID)


def build_features(
    events: pl.DataFrame, items: pl.DataFrame, cfg: FeaturesConfig, *, until: dt.date
) -> FeatureTables:
    """Both snapshot tables up to ``until`` (see :func:`build_user_features`).

    With ``cfg.user_partition_events`` set, the user table is built in
    ``ceil(events / cfg.user_partition_events)`` buckets of users
    (:func:`build_user_features_in_parts`).
    """
    step = cfg.user_partition_events
    parts = 1 if step is None else -(-events.height // step)
    return FeatureTables(
        user=build_user_features_in_parts(events, items, cfg, until=until, parts=parts),
        item=build_item_features(events, items, cfg, until=until),
    )
