"""Any CSV or Parquet of events, mapped by configuration alone.

Columns are referred to by name, or by 1-based position (which also works for a
CSV without a header). When a ``category_id`` or ``price`` column is mapped, the
items table is derived from the events: one version per distinct
(item, category, price), valid from the first event that showed it.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from longtail import schema as S
from longtail.config import GenericSource
from longtail.errors import SourceError
from longtail.ingest import quarantine as Q
from longtail.ingest.events import EventMapping, RowLimits, event_mapping_names, parse_events
from longtail.ingest.reader import RawTable, read_delimited, read_parquet_raw
from longtail.ingest.result import IngestResult

__all__ = ["ingest_generic"]


def _column_name(raw: RawTable, ref: str | int | None, key: str) -> str | None:
    if ref is None:
        return None
    if isinstance(ref, int):
        if ref > len(raw.columns):
            msg = (
                f"{raw.path}: source.columns.{key} = {ref} but the file has only "
                f"{len(raw.columns)} columns"
            )
            raise SourceError(msg)
        return raw.columns[ref - 1]
    if ref not in raw.columns:
        msg = (
            f"{raw.path}: required column {ref!r} (source.columns.{key}) is missing "
            f"(columns: {raw.columns})"
        )
        raise SourceError(msg)
    return ref


def _items_from_events(events: pl.DataFrame) -> pl.DataFrame:
    # A row without a category (or price) keeps the item's last known one: a
    # missing value in one event is no evidence the item lost its category.
    versions = (
        events.filter(pl.col(S.CATEGORY_ID).is_not_null() | pl.col(S.PRICE).is_not_null())
        .group_by(S.ITEM_ID, S.CATEGORY_ID, S.PRICE)
        .agg(pl.col(S.EVENT_TIME).min().alias(S.VALID_FROM))
        .sort(S.ITEM_ID, S.VALID_FROM, S.CATEGORY_ID, S.PRICE)
        .unique([S.ITEM_ID, S.VALID_FROM], keep="first", maintain_order=True)
        .with_columns(pl.col(S.CATEGORY_ID, S.PRICE).forward_fill().over(S.ITEM_ID))
        .unique([S.ITEM_ID, S.CATEGORY_ID, S.PRICE], keep="first", maintain_order=True)
        .with_columns(
            pl.lit(None, pl.Boolean).alias(S.AVAILABLE), pl.lit(None, pl.String).alias(S.TITLE)
        )
    )
    return S.conform(versions, S.ITEMS, table="items")


def ingest_generic(
    source: GenericSource,
    *,
    now: dt.datetime,
    future_tolerance: dt.timedelta,
    limits: RowLimits | None = None,
) -> IngestResult:
    """Read a mapped CSV/Parquet event file into canonical tables.

    Raises
    ------
    SourceError
        The file is missing or unreadable as a whole (encoding, duplicate column
        names), a mapped column does not exist or has an unreadable type, or
        most rows fail because of the mapping (see :func:`parse_events`).
    """
    path = source.events
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        raw = read_parquet_raw(path)
    elif suffix in {".csv", ".tsv", ".txt"}:
        raw = read_delimited(path, separator=source.separator, has_header=source.has_header)
    else:
        msg = f"{path}: source.events must be .csv or .parquet. Got {suffix!r} instead."
        raise SourceError(msg)
    cols = source.columns
    names = source.event_names
    mapping = EventMapping(
        user_id=_column_name(raw, cols.user_id, "user_id") or "",
        item_id=_column_name(raw, cols.item_id, "item_id") or "",
        event_type=_column_name(raw, cols.event_type, "event_type") or "",
        event_time=_column_name(raw, cols.event_time, "event_time") or "",
        transaction_id=_column_name(raw, cols.transaction_id, "transaction_id"),
        category_id=_column_name(raw, cols.category_id, "category_id"),
        price=_column_name(raw, cols.price, "price"),
        names=event_mapping_names(names.view, names.cart, names.purchase),
        ignore=frozenset(names.ignore),
        time_unit=source.event_time.unit,
        time_format=source.event_time.format,
        timezone=source.event_time.timezone,
        id_encoding=source.id_encoding,
    )
    parsed = parse_events(
        raw,
        mapping,
        now=now,
        future_tolerance=future_tolerance,
        epoch_us_columns=raw.epoch_us_columns,
        limits=limits,
    )
    items = _items_from_events(parsed.events)
    categories = (
        parsed.events.select(S.CATEGORY_ID)
        .drop_nulls()
        .unique()
        .sort(S.CATEGORY_ID)
        .with_columns(pl.lit(None, pl.Int64).alias(S.PARENT_ID))
    )
    # Derived tables read no rows of their own; their accounts say so.
    derived = [Q.TableAccount("items"), Q.TableAccount("categories")]
    return IngestResult(
        events=S.conform(parsed.events, S.EVENTS, table="events"),
        items=items,
        categories=S.conform(categories, S.CATEGORIES, table="categories"),
        quarantine=parsed.quarantine,
        accounts=[parsed.account, *derived],
        id_map=parsed.id_map if source.id_encoding == "hash" else None,
    )
