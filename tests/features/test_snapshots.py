"""Snapshots see only events strictly before their timestamp, checked against brute force."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from longtail import schema as S
from longtail.config import FeaturesConfig, SyntheticSource
from longtail.features import build_features, item_feature_schema, user_feature_schema
from longtail.ingest import generate

pytestmark = pytest.mark.unit

CFG = FeaturesConfig(recent_items=5)
UNTIL = dt.date(2024, 1, 15)
D0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def shop() -> tuple[pl.DataFrame, pl.DataFrame]:
    src = SyntheticSource(n_users=120, n_items=80, n_top_categories=3, n_leaf_categories=8, days=16)
    tables = generate(src, seed=11)
    return tables.events, tables.items


def _row(frame: pl.DataFrame, key: str, ident: int, at: dt.datetime) -> dict[str, object]:
    rows = frame.filter((pl.col(key) == ident) & (pl.col(S.SNAPSHOT_TIME) == at))
    assert rows.height == 1
    return rows.row(0, named=True)


def test_a_snapshot_is_unchanged_by_events_at_or_after_its_timestamp(
    shop: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    events, items = shop
    full = build_features(events, items, CFG, until=UNTIL)
    for day in (dt.date(2024, 1, 5), dt.date(2024, 1, 11)):
        at = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        # Only events before the snapshot, and only item versions before it.
        past = build_features(
            events.filter(pl.col(S.EVENT_TIME) < at),
            items.filter(pl.col(S.VALID_FROM) < at),
            CFG,
            until=day,
        )
        for got, want in ((full.user, past.user), (full.item, past.item)):
            got_at = got.filter(pl.col(S.SNAPSHOT_TIME) == at)
            want_at = want.filter(pl.col(S.SNAPSHOT_TIME) == at)
            assert got_at.height > 0
            assert got_at.equals(want_at)


def test_user_windows_recency_and_recent_items_match_brute_force(
    shop: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    events, items = shop
    users = build_features(events, items, CFG, until=UNTIL).user
    assert users.schema == pl.Schema(user_feature_schema(CFG))
    sample = users.filter(pl.col(S.SNAPSHOT_TIME) >= D0 + dt.timedelta(days=3)).sample(40, seed=2)
    for row in sample.iter_rows(named=True):
        at, uid = row[S.SNAPSHOT_TIME], row[S.USER_ID]
        mine = events.filter((pl.col(S.USER_ID) == uid) & (pl.col(S.EVENT_TIME) < at))
        for w in CFG.user_windows_days:
            recent = mine.filter(pl.col(S.EVENT_TIME) >= at - dt.timedelta(days=w))
            for kind, name in (("view", "views"), ("cart", "carts"), ("purchase", "purchases")):
                want = recent.filter(pl.col(S.EVENT_TYPE) == kind).height
                assert row[S.window_column("user", name, w)] == want
        buys = mine.filter(pl.col(S.EVENT_TYPE) == "purchase")
        if buys.is_empty():
            assert row[S.USER_DAYS_SINCE_LAST_PURCHASE] is None
        else:
            gap = (at - buys[S.EVENT_TIME].max()).total_seconds() / 86_400
            assert row[S.USER_DAYS_SINCE_LAST_PURCHASE] == pytest.approx(gap)
        views = mine.filter(pl.col(S.EVENT_TYPE) == "view").sort(S.EVENT_TIME, maintain_order=True)
        assert row[S.USER_RECENT_ITEMS] == views[S.ITEM_ID].tail(CFG.recent_items).to_list()


def _hand_made() -> tuple[pl.DataFrame, pl.DataFrame]:
    def t(day: int, hour: int = 0) -> dt.datetime:
        return D0 + dt.timedelta(days=day, hours=hour)

    events = pl.DataFrame(
        {
            S.EVENT_TIME: [t(0, 9), t(1, 0), t(1, 0), t(2, 5), t(2, 6)],
            S.USER_ID: [1, 1, 1, 1, 2],
            S.ITEM_ID: [10, 10, 10, 11, 10],
            S.EVENT_TYPE: ["view", "view", "purchase", "view", "view"],
            S.TRANSACTION_ID: [None, None, "t1", None, None],
        },
        schema=S.EVENTS,
    )
    items = pl.DataFrame(
        {
            S.ITEM_ID: [10, 10, 11],
            S.VALID_FROM: [t(-5), t(2), t(-5)],  # item 10 changes price at day 2 00:00
            S.CATEGORY_ID: [100, 100, 200],
            S.PRICE: [5.0, 9.0, 1.0],
            S.AVAILABLE: [True, False, True],
            S.TITLE: ["a", "a", "b"],
        },
        schema=S.ITEMS,
    )
    return events, items


def test_an_event_exactly_at_the_snapshot_time_counts_only_in_the_next_snapshot() -> None:
    events, items = _hand_made()
    users = build_features(events, items, CFG, until=dt.date(2024, 1, 4)).user
    day1, day2 = D0 + dt.timedelta(days=1), D0 + dt.timedelta(days=2)
    at1 = _row(users, S.USER_ID, 1, day1)
    assert at1["user_views_1d"] == 1  # the 09:00 view of day 0, not the day-1 00:00 one
    assert at1["user_purchases_30d"] == 0
    assert at1[S.USER_DAYS_SINCE_LAST_PURCHASE] is None
    assert at1[S.USER_RECENT_ITEMS] == [10]
    at2 = _row(users, S.USER_ID, 1, day2)
    assert at2["user_views_1d"] == 1 and at2["user_purchases_1d"] == 1
    assert at2[S.USER_DAYS_SINCE_LAST_PURCHASE] == pytest.approx(1.0)
    assert at2[S.USER_RECENT_ITEMS] == [10, 10]


def test_item_properties_set_at_the_snapshot_time_are_not_yet_seen() -> None:
    events, items = _hand_made()
    table = build_features(events, items, CFG, until=dt.date(2024, 1, 4)).item
    assert table.schema == pl.Schema(item_feature_schema(CFG))
    at2 = _row(table, S.ITEM_ID, 10, D0 + dt.timedelta(days=2))
    at3 = _row(table, S.ITEM_ID, 10, D0 + dt.timedelta(days=3))
    assert (at2[S.ITEM_PRICE], at2[S.ITEM_AVAILABLE]) == (5.0, True)
    assert (at3[S.ITEM_PRICE], at3[S.ITEM_AVAILABLE]) == (9.0, False)
    # item 11 is listed from day -5 but first seen on day 2 05:00
    assert (
        _row(table, S.ITEM_ID, 11, D0 + dt.timedelta(days=2))[S.ITEM_DAYS_SINCE_FIRST_SEEN] is None
    )
    seen = _row(table, S.ITEM_ID, 11, D0 + dt.timedelta(days=3))[S.ITEM_DAYS_SINCE_FIRST_SEEN]
    assert seen == pytest.approx(19 / 24)


def test_popularity_buckets_follow_the_cumulative_view_share() -> None:
    # Views in the 30-day window: item 1: 50, item 2: 30, item 3: 15, item 4: 5, item 5: 0.
    counts = {1: 50, 2: 30, 3: 15, 4: 5}
    at = D0 + dt.timedelta(hours=1)
    events = pl.DataFrame(
        {
            S.EVENT_TIME: [at] * sum(counts.values()),
            S.USER_ID: [1] * sum(counts.values()),
            S.ITEM_ID: [i for i, n in counts.items() for _ in range(n)],
            S.EVENT_TYPE: ["view"] * sum(counts.values()),
            S.TRANSACTION_ID: [None] * sum(counts.values()),
        },
        schema=S.EVENTS,
    )
    items = pl.DataFrame(
        {
            S.ITEM_ID: [1, 2, 3, 4, 5],
            S.VALID_FROM: [D0 - dt.timedelta(days=1)] * 5,
            S.CATEGORY_ID: [1] * 5,
            S.PRICE: [1.0] * 5,
            S.AVAILABLE: [True] * 5,
            S.TITLE: ["x"] * 5,
        },
        schema=S.ITEMS,
    )
    cfg = FeaturesConfig(head_share=0.5, torso_share=0.9)
    table = build_features(events, items, cfg, until=dt.date(2024, 1, 2)).item
    day1 = table.filter(pl.col(S.SNAPSHOT_TIME) == D0 + dt.timedelta(days=1)).sort(S.ITEM_ID)
    assert day1[S.POPULARITY_BUCKET].to_list() == ["head", "torso", "torso", "tail", "tail"]
    assert day1[S.ITEM_POPULARITY_RANK].to_list() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("parts", [2, 7])
def test_user_snapshots_built_per_bucket_of_users_equal_the_table_in_one_go(
    shop: tuple[pl.DataFrame, pl.DataFrame], parts: int
) -> None:
    from longtail.features import build_user_features
    from longtail.features.snapshots import build_user_features_in_parts

    events, items = shop
    whole = build_user_features(events, items, CFG, until=UNTIL)
    split = build_user_features_in_parts(events, items, CFG, until=UNTIL, parts=parts)
    assert split.equals(whole)
    small = FeaturesConfig(recent_items=5, user_partition_events=events.height // 3)
    assert build_features(events, items, small, until=UNTIL).user.equals(whole)


def test_per_key_running_values_without_grouping_equal_polars_over() -> None:
    # The snapshot grids compute per-key windows, running sums, running maxima and
    # forward fills in one pass over the whole column (no ``.over``). Keys of one row,
    # windows longer than a key's run, zero runs and missing values at a key's start
    # all appear here.
    from longtail.features.snapshots import (
        _cum_max_within,
        _cum_within,
        _forward_fill_within,
        _window,
    )

    rng = np.random.default_rng(3)
    runs = rng.integers(1, 12, size=300)
    keys = np.repeat(rng.permutation(10_000)[: len(runs)], runs)
    n = len(keys)
    values = rng.integers(0, 4, size=n) * (rng.random(n) < 0.6)
    stamps = [
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=int(h)) if keep else None
        for h, keep in zip(rng.integers(0, 5_000, size=n), rng.random(n) < 0.2, strict=True)
    ]
    grid = pl.DataFrame({"k": keys, "v": values, "t": stamps})
    v, t = pl.col("v"), pl.col("t")
    for days in (1, 3, 7, 30):
        grouped = v.cum_sum().over("k") - v.cum_sum().over("k").shift(days).over("k").fill_null(0)
        got = grid.select(_window("v", days, "k").alias("a"), grouped.alias("b"))
        assert got["a"].to_list() == got["b"].to_list(), days
    got = grid.select(
        _cum_within("v", "k").alias("sum"),
        v.cum_sum().over("k").alias("sum_over"),
        _cum_max_within("v", "k").alias("max"),
        v.cum_max().over("k").alias("max_over"),
        _forward_fill_within("t", "k").alias("fill"),
        t.forward_fill().over("k").alias("fill_over"),
    )
    for name in ("sum", "max", "fill"):
        assert got[name].to_list() == got[f"{name}_over"].to_list(), name
    assert got["fill"].null_count() > 0  # some keys start without a value
