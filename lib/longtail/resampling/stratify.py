"""Strata, stable row hashes, group splitting and stratified subsampling.

Every random-looking choice here is a function of the row's keys
(``user_id``, ``item_id``, ``event_time``) and the seed, so it does not depend on
how Ray splits the data into blocks, and the driver and the workers agree on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from longtail.errors import StageError
from longtail.schema import (
    ITEM_CATEGORY,
    LABEL,
    POPULARITY_BUCKET,
    TRAINING_KEYS,
    USER_ID,
)

__all__ = [
    "STRATUM_COLUMN",
    "Stratum",
    "group_parts",
    "keep_mask",
    "row_hash",
    "stratum_values",
    "subsample_thresholds",
]

Stratum = Literal["label_bucket", "category", "user_hash"]
#: Column added while resampling (and removed before writing): the row's stratum value.
STRATUM_COLUMN: Final = "__stratum"
_MASK: Final = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix64(values: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64 finaliser: a stable, well-spread 64-bit hash of each value."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _as_u64(series: pl.Series) -> NDArray[np.uint64]:
    ints = series.cast(pl.Int64).fill_null(-1).to_numpy()
    return ints.astype(np.int64, copy=False).view(np.uint64)


def row_hash(frame: pl.DataFrame, *, seed: int) -> NDArray[np.uint64]:
    """Return a 64-bit hash of each row's keys (user, item, event time) and ``seed``.

    Raises
    ------
    StageError
        A key column is missing.
    """
    missing = [c for c in TRAINING_KEYS if c not in frame.columns]
    if missing:
        msg = f"row hashing needs key columns {list(TRAINING_KEYS)}. Missing {missing!r}."
        raise StageError(msg)
    h = _mix64(np.full(frame.height, np.uint64(seed % 2**64), dtype=np.uint64))
    for name in TRAINING_KEYS:
        with np.errstate(over="ignore"):
            h = _mix64(h ^ _as_u64(frame.get_column(name)))
    return h


def stratum_values(frame: pl.DataFrame, stratum: str, *, user_hash_buckets: int) -> pl.Series:
    """Return the stratum value of each row as a string.

    ``label_bucket`` is the popularity bucket: the label is the class *inside* the
    group (a sampler needs both classes), so the stratum is label x bucket.
    ``category`` is the item category id, ``user_hash`` a stable hash of the user
    into ``user_hash_buckets`` buckets. Nulls become ``"null"``.

    Raises
    ------
    StageError
        Unknown stratum, or the column it needs is missing.
    """
    if stratum == "label_bucket":
        column = POPULARITY_BUCKET
    elif stratum == "category":
        column = ITEM_CATEGORY
    elif stratum == "user_hash":
        column = USER_ID
    else:
        msg = (
            "resampling.stratum must be 'label_bucket', 'category' or 'user_hash'. "
            f"Got {stratum!r} instead."
        )
        raise StageError(msg)
    if column not in frame.columns:
        msg = f"stratum {stratum!r} needs column {column!r}. Got {frame.columns!r} instead."
        raise StageError(msg)
    if stratum == "user_hash":
        buckets = _mix64(_as_u64(frame.get_column(USER_ID))) % np.uint64(user_hash_buckets)
        return pl.Series(STRATUM_COLUMN, buckets.astype(np.int64)).cast(pl.String)
    values = frame.get_column(column).cast(pl.String).fill_null("null")
    return values.alias(STRATUM_COLUMN)


def group_parts(sizes: Mapping[str, int], *, max_group_rows: int) -> dict[str, int]:
    """Return, per stratum value, how many hash parts its rows are split into.

    A stratum of ``n`` rows becomes ``ceil(n / max_group_rows)`` parts of about
    equal size, so a sampler never sees more than about ``max_group_rows`` rows.
    """
    return {k: max(1, math.ceil(n / max_group_rows)) for k, n in sizes.items()}


def _allocate(sizes: Mapping[tuple[int, str], int], target: int) -> dict[tuple[int, str], int]:
    """Largest-remainder allocation of ``target`` rows proportional to ``sizes``.

    Every non-empty stratum keeps at least one row when ``target`` allows it, so a
    rare (label, tail) cell never vanishes.
    """
    total = sum(sizes.values())
    if target >= total:
        return dict(sizes)
    quota = {k: target * n / total for k, n in sizes.items()}
    alloc = {k: min(sizes[k], math.floor(q)) for k, q in quota.items()}
    if target >= len(sizes):
        for k in alloc:
            if sizes[k] > 0 and alloc[k] == 0:
                alloc[k] = 1
    left = target - sum(alloc.values())
    for k in sorted(quota, key=lambda k: (-(quota[k] - math.floor(quota[k])), k)):
        if left <= 0:
            break
        if alloc[k] < sizes[k]:
            alloc[k] += 1
            left -= 1
    return alloc


def subsample_thresholds(
    keys: pl.DataFrame, *, target_rows: int, seed: int
) -> dict[tuple[int, str], int]:
    """Per (label, popularity bucket), the largest row hash kept by stratified subsampling.

    ``keys`` needs the key columns, ``label`` and ``item_popularity_bucket``. A row
    is kept iff ``row_hash(row) <= threshold[(label, bucket)]``; a stratum absent
    from the result keeps no row. Each stratum keeps its share of ``target_rows``
    (largest remainder, at least one row each), so tail items keep their share.
    """
    if POPULARITY_BUCKET not in keys.columns or LABEL not in keys.columns:
        msg = (
            f"stratified subsampling needs {LABEL!r} and {POPULARITY_BUCKET!r}. "
            f"Got {keys.columns!r} instead."
        )
        raise StageError(msg)
    frame = pl.DataFrame(
        {
            "label": keys.get_column(LABEL).cast(pl.Int64),
            "bucket": keys.get_column(POPULARITY_BUCKET).cast(pl.String).fill_null("null"),
            "u": pl.Series(row_hash(keys, seed=seed), dtype=pl.UInt64),
        }
    )
    sizes = {
        (int(r[0]), str(r[1])): int(r[2])
        for r in frame.group_by("label", "bucket").len().iter_rows()
    }
    alloc = _allocate(sizes, target_rows)
    ranked = frame.with_columns(rank=pl.col("u").rank("ordinal").over("label", "bucket"))
    kept = ranked.join(
        pl.DataFrame(
            {
                "label": [k[0] for k in alloc],
                "bucket": [k[1] for k in alloc],
                "n": list(alloc.values()),
            },
            schema={"label": pl.Int64, "bucket": pl.String, "n": pl.Int64},
        ),
        on=["label", "bucket"],
    ).filter(pl.col("rank") <= pl.col("n"))
    out = kept.group_by("label", "bucket").agg(pl.col("u").max())
    return {(int(r[0]), str(r[1])): int(r[2]) for r in out.iter_rows()}


def keep_mask(
    frame: pl.DataFrame, thresholds: Mapping[tuple[int, str], int], *, seed: int
) -> NDArray[np.bool_]:
    """Return the rows of ``frame`` that stratified subsampling keeps (see thresholds)."""
    u = row_hash(frame, seed=seed)
    labels = frame.get_column(LABEL).cast(pl.Int64).to_numpy()
    buckets = frame.get_column(POPULARITY_BUCKET).cast(pl.String).fill_null("null").to_numpy()
    mask = np.zeros(frame.height, dtype=np.bool_)
    for (label, bucket), limit in thresholds.items():
        cell = (labels == label) & (buckets == bucket)
        mask |= cell & (u <= np.uint64(limit))
    return mask
