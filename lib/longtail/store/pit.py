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

import polars as pl

from longtail.errors import StageError

if TYPE_CHECKING:
    pass

__all__ = ["EntityFrame", "as_polars", "point_in_time_join", "utc_timestamp"]

EntityFrame = "pd.DataFrame | pa.Table | pl.DataFrame | pl.LazyFrame"

_ROW = "__lt_row"
_TS = "__lt_ts"
_TS_RIGHT = "__lt_ts_right"
_CREATED = "__lt_created"


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
    ).with_row_index(_ROW)

    order = [_TS]
    right_cols = [
        *(pl.col(r).alias(k) for (_, r), k in zip(keys, key_names, strict=True)),
        utc_timestamp(feature_timestamp, features.schema[feature_timestamp], unit=unit).alias(_TS),
        *(pl.col(src).alias(out) for src, out in columns.items()),
    ]
    if created_timestamp:
        right_cols.append(pl.col(created_timestamp).alias(_CREATED))
        order.append(_CREATED)
    right = (
        features.lazy()
        .select(right_cols)
        .drop_nulls([*key_names, _TS])
        # Stable sort by (timestamp, created): among equal timestamps the backward
        # as-of join takes the last row, i.e. the latest created, then the last in
        # source order (checked against the oracle in tests/store/test_pit.py).
        .sort(order, nulls_last=False, maintain_order=True)
        .with_columns(pl.col(_TS).alias(_TS_RIGHT))
        .drop(_CREATED, strict=False)
        .collect()
    )
    joined = left.sort(_TS).join_asof(
        right,
        on=_TS,
        by=key_names or None,
        strategy="backward",
        allow_exact_matches=True,
        check_sortedness=False,
    )
    out_names = list(columns.values())
    if ttl is not None and ttl > dt.timedelta(0):
        fresh = pl.col(_TS_RIGHT) >= pl.col(_TS) - ttl
        joined = joined.with_columns(pl.when(fresh).then(pl.col(c)).alias(c) for c in out_names)
    return joined.sort(_ROW).select(out_names)
