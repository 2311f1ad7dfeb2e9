"""The public RetailRocket layout -> canonical tables.

events.csv (timestamp ms, visitorid, event, itemid, transactionid) is required.
item_properties_part*.csv (timestamp, itemid, property, value) become
time-versioned items: ``categoryid``, ``available`` and ``790`` (the price, written
like ``n5160.000``) are loaded; other properties are recognised, counted as
ignored and not loaded. category_tree.csv gives the categories. Some copies ship
an ``item_category.csv`` (ItemId, categoryid, parentid): when present it gives each
item a category valid for all time. Property and tree files are optional.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Final

import polars as pl

from longtail import schema as S
from longtail.config import RetailRocketSource
from longtail.ingest import quarantine as Q
from longtail.ingest.events import EventMapping, RowLimits, parse_events
from longtail.ingest.reader import read_delimited, require_columns
from longtail.ingest.result import IngestResult

__all__ = ["ingest_retailrocket"]

log = logging.getLogger(__name__)

EVENT_MAPPING: Final = EventMapping(
    user_id="visitorid",
    item_id="itemid",
    event_type="event",
    event_time="timestamp",
    transaction_id="transactionid",
    names={"view": "view", "addtocart": "cart", "transaction": "purchase"},
    time_unit="ms",
    configurable=False,
)
_LOADED_PROPERTIES: Final = {"categoryid": S.CATEGORY_ID, "available": S.AVAILABLE, "790": S.PRICE}
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _parse_properties(
    source: RetailRocketSource, account: Q.TableAccount, limits: RowLimits
) -> tuple[list[pl.DataFrame], list[pl.DataFrame]]:
    parts: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []
    for name in source.item_properties:
        path = source.path / name
        if not path.is_file():
            continue
        raw = read_delimited(path)
        require_columns(raw, ["timestamp", "itemid", "property", "value"])
        account.rows_read += raw.rows_read
        rows = raw.rows.with_columns(
            pl.col("itemid").cast(pl.Int64, strict=False).alias("_item"),
            pl.from_epoch(pl.col("timestamp").cast(pl.Int64, strict=False), time_unit="ms")
            .dt.cast_time_unit("us")
            .dt.replace_time_zone("UTC")
            .alias("_time"),
            pl.col("property").is_in(list(_LOADED_PROPERTIES)).alias("_loaded"),
            pl.col("value").str.strip_prefix("n").cast(pl.Float64, strict=False).alias("_num"),
        )
        reason = (
            pl.when(pl.col("itemid").is_null())
            .then(pl.lit(Q.MISSING_ID))
            .when(pl.col("_item").is_null())
            .then(pl.lit(Q.INVALID_ID))
            .when(pl.col("_time").is_null())
            .then(pl.lit(Q.UNPARSABLE_TIMESTAMP))
            # nan/inf, and a category that is no integer, are no value (never loaded as null)
            .when(
                pl.col("_loaded")
                & (
                    ~pl.col("_num").is_finite().fill_null(False)
                    | (
                        (pl.col("property") == "categoryid")
                        & (pl.col("_num") != pl.col("_num").round(0))
                    )
                )
            )
            .then(pl.lit(Q.UNPARSABLE_VALUE))
            .when(pl.col("_loaded") & (pl.col("property") == "790") & (pl.col("_num") < 0))
            .then(pl.lit(Q.NEGATIVE_PRICE))
            .when(
                pl.col("_loaded")
                & (pl.col("property") == "790")
                & (pl.col("_num") > limits.max_price)
            )
            .then(pl.lit(Q.PRICE_OUT_OF_RANGE))
            .otherwise(None)
        )
        ok, bad = Q.split_rejects(raw, rows, reason, table="items")
        rejects.append(bad)
        account.ignored += int((~ok.get_column("_loaded")).sum())
        parts.append(
            ok.filter(pl.col("_loaded")).select(
                pl.col("_item").alias(S.ITEM_ID),
                pl.col("_time").alias(S.VALID_FROM),
                "property",
                "_num",
            )
        )
    return parts, rejects


def _parse_item_category(
    source: RetailRocketSource, account: Q.TableAccount
) -> tuple[list[pl.DataFrame], list[pl.DataFrame]]:
    if source.item_category is None or not (source.path / source.item_category).is_file():
        return [], []
    path = source.path / source.item_category
    raw = read_delimited(path)
    item_col = "ItemId" if "ItemId" in raw.columns else "itemid"
    require_columns(raw, [item_col, "categoryid"])
    account.rows_read += raw.rows_read
    rows = raw.rows.with_columns(
        pl.col(item_col).cast(pl.Int64, strict=False).alias("_item"),
        pl.col("categoryid").cast(pl.Int64, strict=False).alias("_num"),
    )
    reason = (
        pl.when(pl.col(item_col).is_null() | pl.col("categoryid").is_null())
        .then(pl.lit(Q.MISSING_ID))
        .when(pl.col("_item").is_null() | pl.col("_num").is_null())
        .then(pl.lit(Q.INVALID_ID))
        .otherwise(None)
    )
    good, rejects = Q.split_rejects(raw, rows, reason, table="items")
    ok = good.select(
        pl.col("_item").alias(S.ITEM_ID),
        pl.lit(_EPOCH).dt.cast_time_unit("us").alias(S.VALID_FROM),
        pl.lit("categoryid").alias("property"),
        pl.col("_num").cast(pl.Float64),
    )
    return [ok], [rejects]


def _items_from_properties(parts: list[pl.DataFrame], account: Q.TableAccount) -> pl.DataFrame:
    if not parts:
        return S.empty(S.ITEMS)
    long = pl.concat(parts)
    before = long.height
    long = long.unique(maintain_order=True)
    account.deduplicated += before - long.height
    account.accepted += long.height
    wide = (
        long.with_columns(pl.col("property").replace_strict(_LOADED_PROPERTIES).alias("property"))
        .pivot(
            on="property", index=[S.ITEM_ID, S.VALID_FROM], values="_num", aggregate_function="last"
        )
        .sort(S.ITEM_ID, S.VALID_FROM)
    )
    for col in (S.CATEGORY_ID, S.PRICE, S.AVAILABLE):
        if col not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(col))
    wide = wide.with_columns(
        pl.col(S.CATEGORY_ID, S.PRICE, S.AVAILABLE).forward_fill().over(S.ITEM_ID)
    ).with_columns(
        pl.col(S.CATEGORY_ID).cast(pl.Int64),
        (pl.col(S.AVAILABLE) > 0).alias(S.AVAILABLE),
        pl.lit(None, pl.String).alias(S.TITLE),
    )
    return S.conform(wide, S.ITEMS, table="items")


def _categories(
    source: RetailRocketSource, account: Q.TableAccount
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    path = source.path / source.category_tree
    if not path.is_file():
        log.warning("no %s: categories table left empty", path)
        return S.empty(S.CATEGORIES), []
    raw = read_delimited(path)
    require_columns(raw, ["categoryid", "parentid"])
    account.rows_read += raw.rows_read
    rows = raw.rows.with_columns(
        pl.col("categoryid").cast(pl.Int64, strict=False).alias(S.CATEGORY_ID),
        pl.col("parentid").cast(pl.Int64, strict=False).alias(S.PARENT_ID),
    )
    reason = (
        pl.when(pl.col("categoryid").is_null())
        .then(pl.lit(Q.MISSING_ID))
        .when(
            pl.col(S.CATEGORY_ID).is_null()
            | (pl.col("parentid").is_not_null() & pl.col(S.PARENT_ID).is_null())
        )
        .then(pl.lit(Q.INVALID_ID))
        .otherwise(None)
    )
    good, rejects = Q.split_rejects(raw, rows, reason, table="categories")
    ok = good.select(S.CATEGORY_ID, S.PARENT_ID)
    before = ok.height
    ok = ok.unique(maintain_order=True)
    account.deduplicated += before - ok.height
    account.accepted += ok.height
    return S.conform(ok.sort(S.CATEGORY_ID), S.CATEGORIES, table="categories"), [rejects]


def ingest_retailrocket(
    source: RetailRocketSource,
    *,
    now: dt.datetime,
    future_tolerance: dt.timedelta,
    limits: RowLimits | None = None,
) -> IngestResult:
    """Read a RetailRocket folder into canonical tables.

    Raises
    ------
    SourceError
        events.csv is missing, or a file lacks a required column.
    """
    raw = read_delimited(source.path / source.events)
    lim = limits or RowLimits()
    parsed = parse_events(
        raw, EVENT_MAPPING, now=now, future_tolerance=future_tolerance, limits=lim
    )
    items_acc = Q.TableAccount("items")
    cat_parts, cat_rejects = _parse_item_category(source, items_acc)
    prop_parts, prop_rejects = _parse_properties(source, items_acc, lim)
    items = _items_from_properties(cat_parts + prop_parts, items_acc)
    cats_acc = Q.TableAccount("categories")
    categories, tree_rejects = _categories(source, cats_acc)
    rejects = [parsed.quarantine, *cat_rejects, *prop_rejects, *tree_rejects]
    items_q = pl.concat([*cat_rejects, *prop_rejects]) if cat_rejects or prop_rejects else None
    if items_q is not None:
        items_acc.add_quarantined(items_q)
    if tree_rejects:
        cats_acc.add_quarantined(pl.concat(tree_rejects))
    for acc in (items_acc, cats_acc):
        acc.check()
    return IngestResult(
        events=S.conform(parsed.events, S.EVENTS, table="events"),
        items=items,
        categories=categories,
        quarantine=pl.concat(rejects),
        accounts=[parsed.account, items_acc, cats_acc],
    )
