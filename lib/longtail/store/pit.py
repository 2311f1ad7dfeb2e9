"""The point-in-time join, in Polars: the one piece of logic the offline store is built on.

For every entity row, take the feature row of the same key with the latest
timestamp at or before the entity timestamp, and not older than the entity
timestamp minus the TTL. Ties on the timestamp are broken by the created
timestamp (the later one wins; a null created timestamp sorts lowest), then by
the order of the source. Entity rows without a match keep nulls. The output has
exactly one row per entity row, in the entity frame's order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from longtail.errors import StageError

if TYPE_CHECKING:
    pass

__all__ = ["EntityFrame", "as_polars", "point_in_time_join", "utc_timestamp"]

EntityFrame = "pd.DataFrame | pa.Table | pl.DataFrame | pl.LazyFrame"

_ROW = "__lt_row"
_POS = "__lt_pos"
_TS = "__lt_ts"
_CREATED = "__lt_created"
_C = "__lt_c"
_C_RIGHT = "__lt_c_right"
_FLOOR = "__lt_floor"
_TS_RIGHT = "__lt_ts_right"

# Key dtypes the packed sort key holds; others (strings, floats) take the slower path.
_INT_KEYS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
_INT64_MAX = 2**63 - 1
# The largest packed value (tests lower it to take the other paths).
_PACKED_MAX = _INT64_MAX


def as_polars(frame: Any) -> pl.DataFrame:
    """Return ``frame`` (pandas, Arrow, Polars eager or lazy) as a Polars frame.

    Raises
    ------
    StageError
        ``frame`` is of another type (a SQL string, for example).
    """
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    mod = type(frame).__module__.split(".")[0]
    if mod == "pandas":
        return pl.from_pandas(frame)
    if mod == "pyarrow":
        out = pl.from_arrow(frame)
        if isinstance(out, pl.DataFrame):
            return out
    msg = (
        "entity rows must be a pandas, Polars or Arrow frame. "
        f"Got {type(frame).__name__!r} instead."
    )
    raise StageError(msg)


def _time_unit(*dtypes: pl.DataType) -> str:
    units = {getattr(d, "time_unit", None) for d in dtypes}
    return "ns" if "ns" in units else "us"


def utc_timestamp(name: str, dtype: pl.DataType, *, unit: str = "us") -> pl.Expr:
    """Return ``name`` as a UTC timestamp of ``unit``; naive times are taken as UTC.

    Raises
    ------
    StageError
        The column is not a date or datetime.
    """
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        col = (
            col.dt.convert_time_zone("UTC")
            if dtype.time_zone is not None
            else col.dt.replace_time_zone("UTC")
        )
    elif isinstance(dtype, pl.Date):
        col = col.cast(pl.Datetime(unit)).dt.replace_time_zone("UTC")  # type: ignore[arg-type]
    else:
        msg = f"column {name!r} must be a date or datetime. Got dtype {dtype} instead."
        raise StageError(msg)
    return col.cast(pl.Datetime(unit, "UTC"))  # type: ignore[arg-type]


def _key_exprs(
    entity: pl.DataFrame, features: pl.DataFrame, keys: Sequence[tuple[str, str]]
) -> list[pl.Expr]:
    exprs = []
    for i, (left, right) in enumerate(keys):
        if left not in entity.columns:
            msg = f"entity rows lack join key column {left!r}; have {entity.columns}"
            raise StageError(msg)
        ldt, rdt = entity.schema[left], features.schema[right]
        if ldt != rdt and not (ldt.is_numeric() and rdt.is_numeric()) and ldt != pl.Null:
            msg = (
                f"join key {left!r} has dtype {ldt} in the entity rows but {rdt} in the "
                "feature source"
            )
            raise StageError(msg)
        exprs.append(pl.col(left).cast(rdt, strict=False).alias(f"__lt_k{i}"))
    return exprs


def _nulls(n: int, dtype: pl.DataType) -> pl.Series:
    return pl.Series(_POS, dtype=dtype).extend_constant(None, n)


def _sort(frame: pl.DataFrame, on: str, *, created: bool) -> pl.DataFrame:
    """Stably sort ``frame`` by ``on``, then ``_CREATED`` (null lowest), unless it is already.

    Among equal ``on`` values the as-of join takes the last row: the latest created,
    then the last in source order. Sources are often written in order (of time, or of
    key and time), so an O(n) check often saves the sort.
    """
    if not frame[on].is_sorted():
        frame = frame.sort(on, maintain_order=True)
    if created:
        this, prev = pl.col(_CREATED), pl.col(_CREATED).shift(1)
        # A null created after a non-null one, or a smaller one, inside a tie.
        unordered = (pl.col(on) == pl.col(on).shift(1)) & (
            (this < prev) | (this.is_null() & prev.is_not_null())
        )
        if frame.select(unordered.any()).item():
            # Stable on the frame sorted by ``on``: same order as one sort on both.
            frame = frame.sort([on, _CREATED], nulls_last=False, maintain_order=True)
    return frame


def _key_offset(key: pl.Expr, dtype: pl.DataType, low: int) -> pl.Expr:
    # ``key - low`` as Int64 without overflow: unsigned keys may exceed Int64 before.
    if dtype.is_unsigned_integer():
        return (key - low).cast(pl.Int64)
    return key.cast(pl.Int64) - low


def _pack(
    left: pl.DataFrame, right: pl.DataFrame, key_names: list[str], ttl: int | None
) -> tuple[pl.DataFrame, pl.Series] | None:
    """Pack (keys, time) into one Int64 per row that sorts like the tuple; None: too wide.

    An as-of join on one integer column is several times faster than one grouped by
    the keys. Keys become offsets from the source's smallest key; times become slots
    counted from the source's first time ``lo``: one per time unit when that fits, else
    one per greatest common divisor of the source's time offsets (a day for daily
    snapshots). That is exact: a source time ``lo + a * step`` is at or before ``t``
    iff ``a <= floor((t - lo) / step)``. Each key has ``width`` slots; slot 0 holds
    entity times before ``lo``.

    Parameters
    ----------
    left, right
        Entity and feature rows with ``key_names`` (of one dtype per key) and ``_TS``.
    key_names
        The join key columns.
    ttl
        The TTL in the unit of ``_TS``, or None.

    Returns
    -------
    tuple[pl.DataFrame, pl.Series] | None
        For the entity rows, ``_C`` (null: the key is not in the source's range) and
        ``_FLOOR``, the smallest packed value of a row that may match it (same key,
        inside the TTL); the source's packed values. None when a key is not an integer
        or the packed values would not fit in an Int64.
    """
    times = right[_TS].to_physical()
    lo, hi = times.min(), times.max()
    if not isinstance(lo, int) or not isinstance(hi, int) or hi - lo >= _INT64_MAX:
        return None
    bounds = []
    keys_span = 1
    for k in key_names:
        dtype = right.schema[k]
        if dtype not in _INT_KEYS:
            return None
        low, high = right[k].min(), right[k].max()
        if not isinstance(low, int) or not isinstance(high, int):
            return None
        bounds.append((k, dtype, low, high))
        keys_span *= high - low + 1
    step = 1  # no division when the raw times fit
    if keys_span * (hi - lo + 2) > _PACKED_MAX:
        step = int(np.gcd.reduce((times - lo).to_numpy())) or 1
    width = (hi - lo) // step + 2
    if keys_span * width > _PACKED_MAX:
        return None

    def steps(offset: pl.Expr) -> pl.Expr:
        return offset if step == 1 else offset // step

    t = pl.col(_TS).to_physical()
    left_id: pl.Expr = pl.lit(0, pl.Int64)
    right_id: pl.Expr = pl.lit(0, pl.Int64)
    stride = width
    for k, dtype, low, high in reversed(bounds):
        inside = pl.when(pl.col(k).is_between(low, high)).then(pl.col(k))
        left_id = left_id + _key_offset(inside, dtype, low) * stride
        right_id = right_id + _key_offset(pl.col(k), dtype, low) * stride
        stride *= high - low + 1
    first = pl.lit(1, pl.Int64)
    if ttl is not None:
        # The oldest slot inside the TTL: ceil((t - ttl - lo) / step) + 1, kept in
        # [1, width] so that the floor stays inside the key's slots.
        first = (-steps(lo + ttl - t) + 1).clip(1, width).cast(pl.Int64)
    slot = (steps(t.clip(lo - 1, hi) - lo) + 1).cast(pl.Int64)
    packed = left.select((left_id + slot).alias(_C), (left_id + first).alias(_FLOOR))
    right_c = right.select((right_id + (steps(t - lo) + 1).cast(pl.Int64)).alias(_C))
    return packed, right_c.to_series()


def _match(
    left: pl.DataFrame,
    right: pl.DataFrame,
    key_names: list[str],
    *,
    created: bool,
    ttl: int | None,
) -> pl.Series:
    """For each entity row, in order, the ``_POS`` of its feature row (null: none)."""
    dtype = right.schema[_POS]
    if left.height == 0 or right.height == 0:
        return _nulls(left.height, dtype)
    packed = _pack(left, right, key_names, ttl)
    if packed is None:
        return _match_by_key(left, right, key_names, created=created, ttl=ttl)
    lhs, right_c = packed
    lhs = lhs.with_row_index(_ROW).drop_nulls(_C).sort(_C)
    rhs = pl.DataFrame([right_c, right[_POS]])
    if created:
        rhs = rhs.with_columns(right[_CREATED])
    rhs = _sort(rhs, _C, created=created).select(_C, pl.col(_C).alias(_C_RIGHT), _POS)
    joined = lhs.join_asof(
        rhs, on=_C, strategy="backward", allow_exact_matches=True, check_sortedness=False
    )
    # The row found may belong to a smaller key, or be older than the TTL.
    found = joined.select(pl.when(pl.col(_C_RIGHT) >= pl.col(_FLOOR)).then(pl.col(_POS)))
    return _nulls(left.height, dtype).scatter(joined[_ROW], found.to_series())


def _match_by_key(
    left: pl.DataFrame,
    right: pl.DataFrame,
    key_names: list[str],
    *,
    created: bool,
    ttl: int | None,
) -> pl.Series:
    """``_match`` for keys that do not pack: an as-of join on time, grouped by the keys."""
    dtype = right.schema[_POS]
    lhs = left.with_row_index(_ROW).sort(_TS)
    rhs = (
        _sort(right, _TS, created=created)
        .drop(_CREATED, strict=False)
        .with_columns(pl.col(_TS).alias(_TS_RIGHT))
    )
    joined = lhs.join_asof(
        rhs,
        on=_TS,
        by=key_names or None,
        strategy="backward",
        allow_exact_matches=True,
        check_sortedness=False,
    )
    found = pl.col(_POS)
    if ttl is not None:
        age = pl.col(_TS).to_physical() - pl.col(_TS_RIGHT).to_physical()
        found = pl.when(age <= ttl).then(found)
    return _nulls(left.height, dtype).scatter(joined[_ROW], joined.select(found).to_series())


def point_in_time_join(
    entity: pl.DataFrame,
    features: pl.DataFrame,
    *,
    keys: Sequence[tuple[str, str]],
    entity_timestamp: str,
    feature_timestamp: str,
    columns: Mapping[str, str],
    created_timestamp: str | None = None,
    ttl: dt.timedelta | None = None,
) -> pl.DataFrame:
    """Return the point-in-time feature values for every entity row, in its order.

    Long because its parameters and their rules are documented; the join is a few Polars calls.

    Parameters
    ----------
    entity
        The entity rows: join keys and a timestamp. Naive timestamps are UTC.
    features
        The feature rows: join keys, a timestamp, optionally a created timestamp,
        and the feature columns.
    keys
        ``(entity column, feature column)`` pairs that must be equal.
    entity_timestamp, feature_timestamp
        The timestamp column on each side.
    columns
        Feature column -> output column name.
    created_timestamp
        Breaks ties between feature rows of the same key and timestamp.
    ttl
        Feature rows older than ``entity timestamp - ttl`` do not match; ``None``
        or zero: no lower bound.

    Returns
    -------
    pl.DataFrame
        ``entity.height`` rows with the output columns only; nulls where no
        feature row matches.

    Raises
    ------
    StageError
        A column is missing, a timestamp is null, or key dtypes are incompatible.
    """
    if entity_timestamp not in entity.columns:
        msg = f"entity rows lack timestamp column {entity_timestamp!r}; have {entity.columns}"
        raise StageError(msg)
    needed = [r for _, r in keys] + [feature_timestamp, *columns]
    if created_timestamp:
        needed.append(created_timestamp)
    missing = [c for c in needed if c not in features.columns]
    if missing:
        msg = f"feature rows lack column(s) {missing}; have {features.columns}"
        raise StageError(msg)
    if entity[entity_timestamp].null_count():
        msg = f"entity rows have null timestamps in {entity_timestamp!r}"
        raise StageError(msg)

    unit = _time_unit(entity.schema[entity_timestamp], features.schema[feature_timestamp])
    key_names = [f"__lt_k{i}" for i in range(len(keys))]
    left = entity.select(
        *_key_exprs(entity, features, keys),
        utc_timestamp(entity_timestamp, entity.schema[entity_timestamp], unit=unit).alias(_TS),
    )
    # Only keys, times and row positions are sorted and joined; the feature columns
    # are gathered once, by position, at the end.
    right_cols = [
        *(pl.col(r).alias(k) for (_, r), k in zip(keys, key_names, strict=True)),
        utc_timestamp(feature_timestamp, features.schema[feature_timestamp], unit=unit).alias(_TS),
    ]
    if created_timestamp:
        right_cols.append(pl.col(created_timestamp).alias(_CREATED))
    right = features.select(right_cols).with_row_index(_POS)
    if any(right[c].null_count() for c in [*key_names, _TS]):
        right = right.drop_nulls([*key_names, _TS])
    ttl_units = None
    if ttl is not None and ttl > dt.timedelta(0):
        ttl_units = ttl // dt.timedelta(microseconds=1) * (1000 if unit == "ns" else 1)
    pos = _match(left, right, key_names, created=created_timestamp is not None, ttl=ttl_units)

    values = features.select(pl.col(src).alias(out) for src, out in columns.items())
    if features.height == 0:
        return values.clear(entity.height)
    # Gathering from one buffer is several times faster than from many chunks (a
    # Parquet read gives one per row group), and without null indices twice as fast
    # again; the copy and the mask cost less.
    values = values.rechunk()
    found, at = pl.lit(pos.is_not_null()), pl.lit(pos.fill_null(0))
    return values.select(pl.when(found).then(pl.col(c).gather(at)) for c in values.columns)
