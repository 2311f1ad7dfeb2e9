"""Raw event rows -> canonical events, with every rejected row quarantined for a reason.

One mapping (column names, time encoding, event names) drives both the
RetailRocket adapter (a fixed mapping) and the generic adapter (a mapping from
config), so the rules and their order are written once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import polars as pl

from longtail import schema as S
from longtail.errors import SourceError
from longtail.ingest import quarantine as Q
from longtail.ingest.reader import RawTable, require_columns

__all__ = ["EventMapping", "ParsedEvents", "parse_events", "stable_id"]

_US_PER: Final = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}
_HASH_MASK: Final = (1 << 63) - 1
ID_MAP: Final[dict[str, pl.DataType]] = {
    "kind": pl.String(),
    "original": pl.String(),
    "id": pl.Int64(),
}


@dataclass(frozen=True)
class EventMapping:
    """How raw columns map to canonical event columns."""

    user_id: str
    item_id: str
    event_type: str
    event_time: str
    names: dict[str, str]
    ignore: frozenset[str] = frozenset()
    transaction_id: str | None = None
    category_id: str | None = None
    price: str | None = None
    time_unit: Literal["s", "ms", "us", "ns"] | None = "s"
    time_format: str | None = None
    timezone: str = "UTC"
    id_encoding: Literal["int", "hash"] = "int"

    def required(self) -> list[str]:
        """Raw columns that must exist."""
        cols = [self.user_id, self.item_id, self.event_type, self.event_time]
        cols += [c for c in (self.transaction_id, self.category_id, self.price) if c]
        return cols


@dataclass
class ParsedEvents:
    """Accepted events (canonical, plus ``category_id``/``price`` when mapped), rejects, counts."""

    events: pl.DataFrame
    quarantine: pl.DataFrame
    account: Q.TableAccount
    # original string id -> int id, per kind, when ids were hashed
    id_map: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ID_MAP))


def stable_id(values: pl.Series) -> pl.Series:
    """Map strings to stable non-negative 63-bit ints (blake2b), identical across runs and versions.

    Hashes each distinct value once, so cost follows the number of distinct ids.
    """
    uniq = values.drop_nulls().unique()
    hashed = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little")
            & _HASH_MASK
            for v in uniq.to_list()
        ),
        dtype=np.int64,
        count=uniq.len(),
    )
    lookup = pl.DataFrame({"v": uniq, "h": hashed})
    return (
        pl.DataFrame({"v": values})
        .join(lookup, on="v", how="left", maintain_order="left")
        .get_column("h")
        .alias(values.name)
    )


def _parse_time(col: str, mapping: EventMapping, *, epoch_us: bool) -> pl.Expr:
    raw = pl.col(col)
    if epoch_us or mapping.time_unit is not None:
        unit = "us" if epoch_us else mapping.time_unit
        as_int = raw.cast(pl.Int64, strict=False)
        as_float = raw.cast(pl.Float64, strict=False)
        factor = _US_PER[unit or "s"]
        if factor is None:  # ns: integer division keeps precision
            us = as_int // 1000
        else:
            us = pl.coalesce(as_int * factor, (as_float * factor).round(0).cast(pl.Int64))
        return pl.from_epoch(us, time_unit="us").dt.replace_time_zone("UTC")
    fmt = mapping.time_format or ""
    has_tz = "%z" in fmt or "%Z" in fmt
    parsed = raw.str.strptime(pl.Datetime("us"), fmt, strict=False)
    if has_tz:
        return parsed.dt.convert_time_zone("UTC")
    return parsed.dt.replace_time_zone(
        mapping.timezone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")


def parse_events(
    raw: RawTable,
    mapping: EventMapping,
    *,
    now: dt.datetime,
    future_tolerance: dt.timedelta,
    epoch_us_columns: frozenset[str] = frozenset(),
) -> ParsedEvents:
    """Apply the event rules to raw rows.

    Rules, in order (a row is quarantined for the first it breaks): wrong number
    of fields, missing id, invalid id, unparsable timestamp, timestamp too far in
    the future, unknown event name, unparsable price, negative price. Rows whose
    event name is in ``mapping.ignore`` are counted as ignored. Exact duplicates
    of accepted rows are removed and counted.

    Parameters
    ----------
    raw
        The source rows as strings.
    mapping
        Column and value mapping.
    now
        The reference time of the future-timestamp rule (UTC).
    future_tolerance
        How far past ``now`` a timestamp may lie.
    epoch_us_columns
        Columns already holding epoch microseconds (typed Parquet timestamps).

    Raises
    ------
    SourceError
        A mapped column is missing from the file.
    """
    require_columns(raw, mapping.required())
    account = Q.TableAccount("events", rows_read=raw.rows_read)
    rows = raw.rows
    id_map_parts: list[pl.DataFrame] = []

    def encode_id(col: str, kind: str) -> pl.Expr:
        if mapping.id_encoding == "int":
            return pl.col(col).cast(pl.Int64, strict=False)
        series = rows.get_column(col)
        ids = stable_id(series)
        id_map_parts.append(
            pl.DataFrame({"kind": kind, "original": series, "id": ids}).drop_nulls().unique()
        )
        return pl.lit(ids)

    parsed = rows.with_columns(
        encode_id(mapping.user_id, "user").alias("_user"),
        encode_id(mapping.item_id, "item").alias("_item"),
        _parse_time(
            mapping.event_time, mapping, epoch_us=mapping.event_time in epoch_us_columns
        ).alias("_time"),
        pl.col(mapping.event_type)
        .replace_strict(mapping.names, default=None, return_dtype=pl.String)
        .alias("_type"),
        pl.col(mapping.event_type).is_in(list(mapping.ignore)).alias("_ignored"),
        (
            pl.col(mapping.price).cast(pl.Float64, strict=False)
            if mapping.price
            else pl.lit(None, pl.Float64)
        ).alias("_price"),
        (
            pl.col(mapping.category_id).cast(pl.Int64, strict=False)
            if mapping.category_id
            else pl.lit(None, pl.Int64)
        ).alias("_category"),
    )
    user_raw, item_raw = pl.col(mapping.user_id), pl.col(mapping.item_id)
    price_raw = pl.col(mapping.price) if mapping.price else pl.lit(None, pl.String)
    limit = now + future_tolerance
    reason = (
        pl.when(user_raw.is_null() | item_raw.is_null())
        .then(pl.lit(Q.MISSING_ID))
        .when(pl.col("_user").is_null() | pl.col("_item").is_null())
        .then(pl.lit(Q.INVALID_ID))
        .when(pl.col("_time").is_null())
        .then(pl.lit(Q.UNPARSABLE_TIMESTAMP))
        .when(pl.col("_time") > pl.lit(limit).dt.cast_time_unit("us"))
        .then(pl.lit(Q.FUTURE_TIMESTAMP))
        .when(pl.col("_type").is_null() & ~pl.col("_ignored"))
        .then(pl.lit(Q.UNKNOWN_EVENT))
        .when(price_raw.is_not_null() & pl.col("_price").is_null())
        .then(pl.lit(Q.UNPARSABLE_PRICE))
        .when(pl.col("_price") < 0)
        .then(pl.lit(Q.NEGATIVE_PRICE))
        .otherwise(None)
    )
    ok, quarantine = Q.split_rejects(raw, parsed, reason, table="events")
    account.ignored = int(ok.get_column("_ignored").sum())
    ok = ok.filter(~pl.col("_ignored"))
    events = ok.select(
        pl.col("_time").alias(S.EVENT_TIME),
        pl.col("_user").alias(S.USER_ID),
        pl.col("_item").alias(S.ITEM_ID),
        pl.col("_type").alias(S.EVENT_TYPE),
        (
            pl.col(mapping.transaction_id).cast(pl.String)
            if mapping.transaction_id
            else pl.lit(None, pl.String)
        ).alias(S.TRANSACTION_ID),
        pl.col("_category").alias(S.CATEGORY_ID),
        pl.col("_price").alias(S.PRICE),
    )
    before = events.height
    events = events.unique(maintain_order=True)
    account.deduplicated = before - events.height
    account.accepted = events.height
    account.add_quarantined(quarantine)
    account.check()
    id_map = (
        pl.concat(id_map_parts).unique().sort("kind", "id")
        if id_map_parts
        else pl.DataFrame(schema=ID_MAP)
    )
    return ParsedEvents(
        events=events.sort(S.EVENT_TIME, S.USER_ID, S.ITEM_ID, maintain_order=True),
        quarantine=quarantine,
        account=account,
        id_map=id_map,
    )


def event_mapping_names(view: list[str], cart: list[str], purchase: list[str]) -> dict[str, str]:
    """Raw event name -> canonical type."""
    names: dict[str, str] = {}
    for canonical, raws in (("view", view), ("cart", cart), ("purchase", purchase)):
        for name in raws:
            names[name] = canonical
    if not names:
        msg = "event_names maps no raw name to view, cart or purchase"
        raise SourceError(msg)
    return names
