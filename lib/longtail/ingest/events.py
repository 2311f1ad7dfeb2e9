"""Raw event rows -> canonical events, with every rejected row quarantined for a reason.

One mapping (column names, time encoding, event names) drives both the
RetailRocket adapter (a fixed mapping) and the generic adapter (a mapping from
config), so the rules and their order are written once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import polars as pl

from longtail import schema as S
from longtail.errors import SourceError
from longtail.ingest import quarantine as Q
from longtail.ingest.reader import RawTable, require_columns

__all__ = ["EventMapping", "ParsedEvents", "RowLimits", "parse_events", "stable_id"]

_US_PER: Final = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}
_PER_SECOND: Final = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
# 9999-12-31 23:59:59.999999 UTC: the last instant every reader of the tables can hold.
_MAX_US: Final = 253_402_300_799_999_999
# Floats hold every integer up to 2**53 exactly; an id beyond that was already rounded.
_MAX_EXACT_FLOAT: Final = float(2**53)
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
    # Whether the mapping comes from config keys a hint may name (the generic source).
    configurable: bool = True

    def required(self) -> list[str]:
        """Raw columns that must exist."""
        cols = [self.user_id, self.item_id, self.event_type, self.event_time]
        cols += [c for c in (self.transaction_id, self.category_id, self.price) if c]
        return cols


@dataclass(frozen=True)
class RowLimits:
    """Plausible values of a row beyond what parses (from ``[ingest]``)."""

    earliest: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    max_price: float = 1e10


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


def _int_value(raw: pl.Series) -> pl.Series:
    """Text -> Int64: an integer, or a float with an exact integer value (``"3.0"``); else null."""
    as_int = raw.cast(pl.Int64, strict=False)
    if as_int.null_count() == raw.null_count():
        return as_int  # the usual case; parsing floats costs ~10x more
    as_float = raw.cast(pl.Float64, strict=False)
    exact = (
        as_float.is_finite()
        & (as_float == as_float.round(0))
        & (as_float.abs() <= _MAX_EXACT_FLOAT)
    )
    from_float = pl.select(pl.when(exact).then(as_float).cast(pl.Int64, strict=False)).to_series()
    return as_int.fill_null(from_float).alias(raw.name)


def _epoch_us(raw: pl.Series, unit: Literal["s", "ms", "us", "ns"]) -> tuple[pl.Series, pl.Series]:
    """Epoch numbers as text -> ``(epoch microseconds, is a number)``.

    The microseconds are null when the text is no number or the time is not
    representable. Bounds are checked before multiplying: Int64 arithmetic
    wraps silently, so ``99999999999999`` seconds would otherwise become a date
    in 2216.
    """
    as_int = raw.cast(pl.Int64, strict=False)
    all_ints = as_int.null_count() == raw.null_count()
    frame = pl.DataFrame(
        {
            "i": as_int,
            # floats only when some value is no int: parsing them costs ~10x more
            "f": (
                pl.repeat(None, raw.len(), dtype=pl.Float64, eager=True)
                if all_ints
                else raw.cast(pl.Float64, strict=False)
            ),
        }
    )
    i, f = pl.col("i"), pl.col("f")
    factor = _US_PER[unit]
    if factor is None:  # ns: integer division keeps precision and cannot overflow
        from_int = i // 1000
        scaled = f / 1000.0
    else:
        from_int = pl.when(i.abs() <= _MAX_US // factor).then(i * factor)
        scaled = f * factor
    from_float = (
        pl.when(scaled.is_finite() & (scaled.abs() <= _MAX_US))
        .then(scaled.round(0))
        .cast(pl.Int64, strict=False)
    )
    us = pl.when(i.is_not_null()).then(from_int).otherwise(from_float)
    out = frame.select(
        pl.when(us.abs() <= _MAX_US).then(us).alias("us"),
        (i.is_not_null() | (f.is_not_null() & ~f.is_nan())).alias("number"),
    )
    return out.get_column("us"), out.get_column("number")


def _parse_time(
    raw: pl.Series, mapping: EventMapping, *, epoch_us: bool
) -> tuple[pl.Series, pl.Series]:
    """Return ``(time, overflow)``: the UTC time (null if not a time), and the overflow flag.

    The flag is true where the text is a number too large for any time (out of
    range, not a typo).
    """
    if epoch_us or mapping.time_unit is not None:
        unit = "us" if epoch_us else (mapping.time_unit or "s")
        us, is_number = _epoch_us(raw, unit)
        time = pl.from_epoch(us, time_unit="us").dt.replace_time_zone("UTC")
        return time, is_number & us.is_null()
    fmt = mapping.time_format or ""
    has_tz = "%z" in fmt or "%Z" in fmt
    parsed = raw.str.strptime(pl.Datetime("us"), fmt, strict=False)
    no_overflow = pl.repeat(False, raw.len(), eager=True, dtype=pl.Boolean)
    if has_tz:
        return parsed.dt.convert_time_zone("UTC"), no_overflow
    return parsed.dt.replace_time_zone(
        mapping.timezone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC"), no_overflow


def parse_events(
    raw: RawTable,
    mapping: EventMapping,
    *,
    now: dt.datetime,
    future_tolerance: dt.timedelta,
    epoch_us_columns: frozenset[str] = frozenset(),
    limits: RowLimits | None = None,
) -> ParsedEvents:
    """Apply the event rules to raw rows.

    Rules, in order (a row is quarantined for the first it breaks): wrong number
    of fields, invalid UTF-8, missing id, invalid id, unparsable timestamp,
    timestamp out of range (before ``limits.earliest``, or a number too large
    for any time), timestamp too far in the future, outside the ingest window,
    unknown event name, unparsable (or non-finite) price, negative price, price
    above ``limits.max_price``, unparsable category. Rows whose event name is in
    ``mapping.ignore`` are counted as ignored. Exact duplicates of accepted rows
    are removed and counted.

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
    limits
        Plausible range of times and prices, and the optional window.

    Raises
    ------
    SourceError
        A mapped column is missing from the file, or most rows fail the same
        way because of the mapping (timestamps in another unit, string ids
        with ``id_encoding = "int"``, event names not mapped): the message
        says which key to set.
    """
    lim = limits or RowLimits()
    require_columns(raw, mapping.required())
    account = Q.TableAccount("events", rows_read=raw.rows_read)
    parsed, id_map_parts = _typed_columns(raw.rows, mapping, epoch_us_columns=epoch_us_columns)
    limit = now + future_tolerance
    parsed = parsed.with_columns(_reject_reason(mapping, lim, limit).alias("_why"))
    _raise_on_column_failures(raw, parsed, mapping, lim, limit)
    ok, quarantine = Q.split_rejects(raw, parsed, pl.col("_why"), table="events")
    ok = ok.drop("_why")
    account.ignored = int(ok.get_column("_ignored").sum())
    ok = ok.filter(~pl.col("_ignored"))
    events = _canonical_events(ok, mapping)
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


def _canonical_events(ok: pl.DataFrame, mapping: EventMapping) -> pl.DataFrame:
    """The accepted rows' parsed columns under their canonical names."""
    return ok.select(
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


def _typed_columns(
    rows: pl.DataFrame, mapping: EventMapping, *, epoch_us_columns: frozenset[str]
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Add the parsed columns (``_user``, ``_item``, ``_time``, ``_type``, ``_price``, ...).

    Returns the rows with them, and the (kind, original, id) maps of hashed ids
    (none with ``id_encoding = "int"``).
    """
    id_map_parts: list[pl.DataFrame] = []

    def encode_id(col: str, kind: str) -> pl.Expr:
        series = rows.get_column(col)
        if mapping.id_encoding == "int":
            return pl.lit(_int_value(series))
        ids = stable_id(series)
        id_map_parts.append(
            pl.DataFrame({"kind": kind, "original": series, "id": ids}).drop_nulls().unique()
        )
        return pl.lit(ids)

    time_values, overflow = _parse_time(
        rows.get_column(mapping.event_time),
        mapping,
        epoch_us=mapping.event_time in epoch_us_columns,
    )
    parsed = rows.with_columns(
        encode_id(mapping.user_id, "user").alias("_user"),
        encode_id(mapping.item_id, "item").alias("_item"),
        pl.lit(time_values).alias("_time"),
        pl.lit(overflow).alias("_overflow"),
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
            encode_id(mapping.category_id, "category")
            if mapping.category_id
            else pl.lit(None, pl.Int64)
        ).alias("_category"),
    )
    return parsed, id_map_parts


def _reject_reason(mapping: EventMapping, lim: RowLimits, limit: dt.datetime) -> pl.Expr:
    """The first event rule a parsed row breaks (see :func:`parse_events`), or null."""
    user_raw, item_raw = pl.col(mapping.user_id), pl.col(mapping.item_id)
    price_raw = pl.col(mapping.price) if mapping.price else pl.lit(None, pl.String)
    cat_raw = pl.col(mapping.category_id) if mapping.category_id else pl.lit(None, pl.String)
    t = pl.col("_time")
    outside = pl.lit(False)
    if lim.window_start is not None:
        outside = outside | (t < pl.lit(lim.window_start).dt.cast_time_unit("us"))
    if lim.window_end is not None:
        outside = outside | (t >= pl.lit(lim.window_end).dt.cast_time_unit("us"))
    return (
        pl.when(user_raw.is_null() | item_raw.is_null())
        .then(pl.lit(Q.MISSING_ID))
        .when(pl.col("_user").is_null() | pl.col("_item").is_null())
        .then(pl.lit(Q.INVALID_ID))
        .when(t.is_null() & pl.col("_overflow"))
        .then(pl.lit(Q.TIMESTAMP_OUT_OF_RANGE))
        .when(t.is_null())
        .then(pl.lit(Q.UNPARSABLE_TIMESTAMP))
        .when(t < pl.lit(lim.earliest).dt.cast_time_unit("us"))
        .then(pl.lit(Q.TIMESTAMP_OUT_OF_RANGE))
        .when(t > pl.lit(limit).dt.cast_time_unit("us"))
        .then(pl.lit(Q.FUTURE_TIMESTAMP))
        .when(outside)
        .then(pl.lit(Q.OUTSIDE_WINDOW))
        .when(pl.col("_type").is_null() & ~pl.col("_ignored"))
        .then(pl.lit(Q.UNKNOWN_EVENT))
        # nan and inf parse as floats but are no price (one inf makes every mean infinite)
        .when(price_raw.is_not_null() & ~pl.col("_price").is_finite().fill_null(False))
        .then(pl.lit(Q.UNPARSABLE_PRICE))
        .when(pl.col("_price") < 0)
        .then(pl.lit(Q.NEGATIVE_PRICE))
        .when(pl.col("_price") > lim.max_price)
        .then(pl.lit(Q.PRICE_OUT_OF_RANGE))
        # a category that does not parse is rejected, never loaded as null over a real one
        .when(cat_raw.is_not_null() & pl.col("_category").is_null())
        .then(pl.lit(Q.UNPARSABLE_VALUE))
        .otherwise(None)
    )


_TIME_REASONS: Final = (Q.UNPARSABLE_TIMESTAMP, Q.TIMESTAMP_OUT_OF_RANGE, Q.FUTURE_TIMESTAMP)


def _raise_on_column_failures(
    raw: RawTable,
    parsed: pl.DataFrame,
    mapping: EventMapping,
    lim: RowLimits,
    limit: dt.datetime,
) -> None:
    """Stop with a hint when most rows fail one rule: that is the mapping, not the rows.

    Quarantining 10,000 of 10,000 rows one by one and loading nothing helps no
    one; the message names what the values look like and the key to set.
    """
    n = parsed.height
    if n == 0:
        return
    # Counts first, in one pass; rows are only filtered once a rule has failed most of them.
    sums = [
        pl.col("_why").is_in(list(_TIME_REASONS)).sum().alias("time"),
        (pl.col("_why") == Q.UNKNOWN_EVENT).sum().alias("unknown_event"),
    ]
    ids = ((mapping.user_id, "user_id", "_user"), (mapping.item_id, "item_id", "_item"))
    if mapping.id_encoding == "int":
        for col, key, alias in ids:
            sums.append(pl.col(col).is_not_null().sum().alias(f"{key}_given"))
            sums.append((pl.col(col).is_not_null() & pl.col(alias).is_null()).sum().alias(key))
    counts_all = parsed.select(sums).row(0, named=True)
    if mapping.id_encoding == "int":
        _raise_on_id_failures(raw, parsed, mapping, counts_all, ids)
    if 2 * counts_all["unknown_event"] > n:
        _raise_on_unknown_events(raw, parsed, mapping, counts_all["unknown_event"])
    if 2 * counts_all["time"] > n:
        _raise_on_time_failures(raw, parsed, mapping, lim, limit)


def _raise_on_id_failures(
    raw: RawTable,
    parsed: pl.DataFrame,
    mapping: EventMapping,
    counts: dict[str, Any],
    ids: tuple[tuple[str, str, str], ...],
) -> None:
    """Most given ids are not integers: string ids under ``id_encoding = "int"``."""
    for col, key, alias in ids:
        given, n_bad = counts[f"{key}_given"], counts[key]
        if given and 2 * n_bad > given:
            example = parsed.filter(pl.col(col).is_not_null() & pl.col(alias).is_null())[col][0]
            where = (
                'set source.id_encoding = "hash" to map string ids to stable integers'
                if mapping.configurable
                else "the ids must be integers"
            )
            msg = (
                f"{raw.path}: {n_bad:,} of {given:,} {key} values are not "
                f"integers (e.g. {example!r}); {where}"
            )
            raise SourceError(msg)


def _raise_on_unknown_events(
    raw: RawTable, parsed: pl.DataFrame, mapping: EventMapping, unknown: int
) -> None:
    """Most rows have an event name the mapping does not know."""
    n = parsed.height
    top = (
        parsed.filter(pl.col("_why") == Q.UNKNOWN_EVENT)
        .group_by(mapping.event_type)
        .len()
        .sort("len", mapping.event_type, descending=[True, False])
        .head(5)
    )
    seen = ", ".join(f"{name!r} {k:,}" for name, k in top.iter_rows())
    where = (
        "map them under [source.event_names] (view, cart, purchase) or list them under ignore"
        if mapping.configurable
        else "the mapping knows only " + ", ".join(sorted(mapping.names))
    )
    msg = (
        f"{raw.path}: {unknown:,} of {n:,} rows have an event name "
        f"that is not mapped (most common: {seen}); {where}"
    )
    raise SourceError(msg)


def _raise_on_time_failures(
    raw: RawTable, parsed: pl.DataFrame, mapping: EventMapping, lim: RowLimits, limit: dt.datetime
) -> None:
    """Most timestamps fail: say how they were read and, when it is clear, the right unit."""
    n = parsed.height
    bad_time = parsed.filter(pl.col("_why").is_in(list(_TIME_REASONS)))
    values = bad_time.get_column(mapping.event_time)
    counts = dict(bad_time.group_by("_why").len().iter_rows())
    what = ", ".join(f"{r} {counts[r]:,}" for r in _TIME_REASONS if counts.get(r))
    span = f"{lim.earliest.date().isoformat()} .. {limit.isoformat(timespec='seconds')}"
    reading = (
        f'unit = "{mapping.time_unit}"'
        if mapping.time_unit is not None
        else f"format = {mapping.time_format!r}"
    )
    msg = (
        f"{raw.path}: {bad_time.height:,} of {n:,} timestamps ({what}) do not land in the "
        f"plausible range {span} when read with {reading} (e.g. {values[0]!r})"
    )
    unit = _likely_unit(values, lim.earliest, limit)
    if unit is not None and unit != mapping.time_unit:
        key = "source.event_time.unit" if mapping.configurable else "the time unit"
        msg += f'; they look like epoch {_UNIT_NAMES[unit]}: set {key} = "{unit}"'
    elif mapping.configurable:
        msg += (
            "; check source.event_time (unit or format, timezone) and [ingest] earliest_timestamp"
        )
    raise SourceError(msg)


_UNIT_NAMES: Final = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
}


def _likely_unit(
    values: pl.Series, earliest: dt.datetime, latest: dt.datetime
) -> Literal["s", "ms", "us", "ns"] | None:
    """The epoch unit under which the median of numeric ``values`` is a plausible time."""
    median = (
        values.cast(pl.Float64, strict=False)
        .filter(pl.Series(values.cast(pl.Float64, strict=False).is_finite().fill_null(False)))
        .median()
    )
    if not isinstance(median, float):
        return None
    lo, hi = earliest.timestamp(), latest.timestamp()
    for unit in ("s", "ms", "us", "ns"):
        if lo <= median / _PER_SECOND[unit] <= hi:
            return unit  # type: ignore[return-value]
    return None


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
