"""The point-in-time join against a brute-force oracle: ties, TTL edges, nulls, zones."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from longtail.errors import StageError
from longtail.store import pit
from longtail.store.pit import as_polars, point_in_time_join

pytestmark = pytest.mark.unit

T0 = dt.datetime(2024, 3, 30, tzinfo=dt.UTC)  # spans the Paris DST change
ZONES = [None, "UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]


def _oracle(
    entity: list[tuple[int | None, int]],
    features: list[tuple[int | None, int | None, int | None, int]],
    ttl: int | None,
) -> list[int | None]:
    """Nested loops: for each entity row, the best feature row by (ts, created, position)."""
    out: list[int | None] = []
    for key, t in entity:
        best: tuple[int, float, int] | None = None
        value: int | None = None
        for pos, (fkey, fts, created, val) in enumerate(features):
            if key is None or fkey != key or fts is None or fts > t:
                continue
            if ttl and fts < t - ttl:
                continue
            rank = (fts, float("-inf") if created is None else created, pos)
            if best is None or rank > best:
                best, value = rank, val
        out.append(value)
    return out


def _times(minutes: list[int | None], zone: str | None) -> pl.Series:
    values = [None if m is None else T0 + dt.timedelta(minutes=m) for m in minutes]
    s = pl.Series(values, dtype=pl.Datetime("us", "UTC"))
    if zone is None:
        return s.dt.replace_time_zone(None)
    return s.dt.convert_time_zone(zone)


entity_rows = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 2)), st.integers(0, 14)), min_size=1, max_size=25
)
feature_rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 2)),
        st.one_of(st.none(), st.integers(0, 12)),
        st.one_of(st.none(), st.integers(0, 3)),
        st.integers(-1000, 1000),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
# Same key and timestamp: the later created timestamp wins, whatever the source order.
@example(
    entity=[(1, 10)],
    features=[(1, 5, 2, 20), (1, 5, 1, 10), (1, 5, None, 0)],
    ttl=None,
    entity_zone=None,
    feature_zone="Europe/Paris",
    with_created=True,
)
@given(
    entity=entity_rows,
    features=feature_rows,
    ttl=st.one_of(st.none(), st.integers(0, 6)),
    entity_zone=st.sampled_from(ZONES),
    feature_zone=st.sampled_from(ZONES),
    with_created=st.booleans(),
)
def test_join_matches_the_brute_force_oracle(
    entity: list[tuple[int | None, int]],
    features: list[tuple[int | None, int | None, int | None, int]],
    ttl: int | None,
    entity_zone: str | None,
    feature_zone: str | None,
    with_created: bool,
) -> None:
    if not with_created:
        features = [(k, t, None, v) for k, t, _, v in features]
    left = pl.DataFrame(
        {
            "uid": pl.Series([k for k, _ in entity], dtype=pl.Int32),
            "ts": _times([t for _, t in entity], entity_zone),
        }
    )
    right = pl.DataFrame(
        {
            "user_id": pl.Series([f[0] for f in features], dtype=pl.Int64),
            "event_timestamp": _times([f[1] for f in features], feature_zone),
            "created": pl.Series([f[2] for f in features], dtype=pl.Int64),
            "x": pl.Series([f[3] for f in features], dtype=pl.Int64),
        }
    )
    got = point_in_time_join(
        left,
        right,
        keys=[("uid", "user_id")],
        entity_timestamp="ts",
        feature_timestamp="event_timestamp",
        created_timestamp="created" if with_created else None,
        columns={"x": "user_x"},
        ttl=None if ttl is None else dt.timedelta(minutes=ttl),
    )
    assert got.columns == ["user_x"]
    assert got["user_x"].to_list() == _oracle(entity, features, ttl)


KEY_KINDS = {
    # dtype, how an oracle key (0..2) is stored; strings take the grouped as-of join
    "int64": (pl.Int64, lambda k: k),
    "negative": (pl.Int16, lambda k: k - 30_000),
    "uint64_high": (pl.UInt64, lambda k: k + 2**64 - 3),
    "string": (pl.String, lambda k: f"u{k}"),
}
grid_or_not = st.one_of(
    st.none(), st.integers(0, 12).map(lambda m: m * 60), st.integers(0, 720)
)  # seconds: on a minute grid (packed in minute steps) or anywhere


@settings(max_examples=300, deadline=None)
# Minute steps: 30 s is before the second snapshot, 61 s after it.
@example(
    entity=[(1, 0, 30), (1, 0, 61), (1, 1, 61)],
    features=[(1, 0, 0, None, 10), (1, 0, 60, None, 20), (1, 1, 120, None, 30)],
    ttl=None,
    two_keys=True,
    key_kind="int64",
    feature_unit="ns",
    order="as_is",
    grouped=False,
    narrow=True,
    with_created=False,
)
@given(
    entity=st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 2)), st.integers(0, 1), st.integers(0, 900)),
        min_size=1,
        max_size=25,
    ),
    features=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 2)),
            st.integers(0, 1),
            grid_or_not,
            st.one_of(st.none(), st.integers(0, 3)),
            st.integers(-1000, 1000),
        ),
        max_size=30,
    ),
    ttl=st.one_of(st.none(), st.integers(0, 400)),
    two_keys=st.booleans(),
    key_kind=st.sampled_from(sorted(KEY_KINDS)),
    feature_unit=st.sampled_from(["us", "ns"]),
    order=st.sampled_from(["as_is", "time", "key_time"]),
    grouped=st.booleans(),
    narrow=st.booleans(),
    with_created=st.booleans(),
)
def test_packed_and_grouped_joins_match_the_oracle_on_sorted_and_unsorted_sources(
    entity: list[tuple[int | None, int, int]],
    features: list[tuple[int | None, int, int | None, int | None, int]],
    ttl: int | None,
    two_keys: bool,
    key_kind: str,
    feature_unit: str,
    order: str,
    grouped: bool,
    narrow: bool,
    with_created: bool,
) -> None:
    """Both join paths, on sources already in the order each sorts by (the sort is
    skipped) and not; integer keys of several widths and signs, one or two keys;
    packed times in microseconds or in steps of their gcd."""
    if not with_created:
        features = [(k, k2, t, None, v) for k, k2, t, _, v in features]
    if order == "time":  # sorted by time: the grouped join skips its sort
        features = sorted(features, key=lambda f: (f[2] is not None, f[2] or 0))
    elif order == "key_time":  # sorted by key and time: the packed join skips its sort
        features = sorted(
            features, key=lambda f: (f[0] is not None, f[0] or 0, f[1], f[2] is not None, f[2] or 0)
        )

    def key(k: int | None, k2: int) -> Any:
        return None if k is None else ((k, k2) if two_keys else k)

    dtype, store = KEY_KINDS[key_kind]
    start = dt.datetime(2024, 3, 30, 23, 59, 59, 999_999)

    def times(seconds: list[int | None], unit: str) -> pl.Series:
        values = [None if t is None else start + dt.timedelta(seconds=t) for t in seconds]
        return pl.Series(values, dtype=pl.Datetime("us")).cast(pl.Datetime(unit))  # type: ignore[arg-type]

    left = pl.DataFrame(
        {
            "k": pl.Series([None if k is None else store(k) for k, _, _ in entity], dtype=dtype),
            "k2": pl.Series([k2 for _, k2, _ in entity], dtype=pl.Int64),
            "ts": times([t for _, _, t in entity], "us"),
        }
    )
    right = pl.DataFrame(
        {
            "k": pl.Series([None if f[0] is None else store(f[0]) for f in features], dtype=dtype),
            "k2": pl.Series([f[1] for f in features], dtype=pl.Int64),
            "event_timestamp": times([f[2] for f in features], feature_unit),
            "created": pl.Series([f[3] for f in features], dtype=pl.Int64),
            "x": pl.Series([f[4] for f in features], dtype=pl.Int64),
        }
    )
    calls = []
    by_key = pit._match_by_key

    def spy(*args: Any, **kwargs: Any) -> pl.Series:
        calls.append(1)
        return by_key(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pit, "_match_by_key", spy)
        if grouped:
            mp.setattr(pit, "_PACKED_MAX", -1)  # nothing fits: the grouped as-of join
        elif narrow:
            mp.setattr(pit, "_PACKED_MAX", 10**6)  # raw times do not fit, gcd steps do
        got = point_in_time_join(
            left,
            right,
            keys=[("k", "k"), ("k2", "k2")] if two_keys else [("k", "k")],
            entity_timestamp="ts",
            feature_timestamp="event_timestamp",
            created_timestamp="created" if with_created else None,
            columns={"x": "x"},
            ttl=None if ttl is None else dt.timedelta(seconds=ttl),
        )
    expected = _oracle(
        [(key(k, k2), t) for k, k2, t in entity],
        [(key(k, k2), t, c, v) for k, k2, t, c, v in features],
        ttl,
    )
    assert got["x"].to_list() == expected
    if any(f[0] is not None and f[2] is not None for f in features):
        assert bool(calls) == (grouped or key_kind == "string")


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    entity = pl.DataFrame(
        {"user_id": [1, 1, 1, 1], "ts": [T0, T0 + dt.timedelta(days=2), T0, T0 - dt.timedelta(1)]}
    )
    features = pl.DataFrame(
        {"user_id": [1], "event_timestamp": [T0 - dt.timedelta(days=1)], "x": [5]}
    )
    return entity, features


def test_ttl_bound_is_inclusive_and_duplicates_each_get_a_row() -> None:
    entity, features = _frames()
    got = point_in_time_join(
        entity,
        features,
        keys=[("user_id", "user_id")],
        entity_timestamp="ts",
        feature_timestamp="event_timestamp",
        columns={"x": "x"},
        ttl=dt.timedelta(days=1),
    )
    # exactly ttl old: kept; 3 days old: dropped; duplicate row: same value; at ts: kept
    assert got["x"].to_list() == [5, None, 5, 5]


def test_feature_row_at_the_entity_time_is_used_but_not_one_after() -> None:
    entity = pl.DataFrame({"user_id": [1, 1], "ts": [T0, T0 - dt.timedelta(microseconds=1)]})
    features = pl.DataFrame({"user_id": [1], "event_timestamp": [T0], "x": [7]})
    got = point_in_time_join(
        entity,
        features,
        keys=[("user_id", "user_id")],
        entity_timestamp="ts",
        feature_timestamp="event_timestamp",
        columns={"x": "x"},
    )
    assert got["x"].to_list() == [7, None]


@pytest.mark.parametrize("kind", ["pandas", "arrow", "lazy"])
def test_entity_frames_from_pandas_arrow_and_lazy_polars_are_accepted(kind: str) -> None:
    entity, _ = _frames()
    frame: Any = {
        "pandas": entity.to_pandas(),
        "arrow": entity.to_arrow(),
        "lazy": entity.lazy(),
    }[kind]
    assert as_polars(frame).equals(entity)


def test_a_sql_string_entity_frame_is_refused_with_a_clear_error() -> None:
    with pytest.raises(StageError, match="pandas, Polars or Arrow"):
        as_polars("SELECT * FROM entity")


def test_null_entity_timestamps_are_refused() -> None:
    entity = pl.DataFrame(
        {"user_id": [1], "ts": [None]}, schema={"user_id": pl.Int64, "ts": pl.Datetime("us")}
    )
    _, features = _frames()
    with pytest.raises(StageError, match="null timestamps"):
        point_in_time_join(
            entity,
            features,
            keys=[("user_id", "user_id")],
            entity_timestamp="ts",
            feature_timestamp="event_timestamp",
            columns={"x": "x"},
        )


def test_string_key_against_integer_key_is_refused() -> None:
    entity = pl.DataFrame({"user_id": ["1"], "ts": [T0]})
    _, features = _frames()
    with pytest.raises(StageError, match="join key 'user_id'"):
        point_in_time_join(
            entity,
            features,
            keys=[("user_id", "user_id")],
            entity_timestamp="ts",
            feature_timestamp="event_timestamp",
            columns={"x": "x"},
        )
