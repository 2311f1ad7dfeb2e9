from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from longtail import schema as S
from longtail.backtest import baselines
from longtail.backtest.baselines import BASELINES, BaselineInputs, build_baselines
from longtail.backtest.evaluate import (
    MODEL,
    EvaluationInputs,
    candidate_recall,
    evaluate_systems,
    holdout_truth,
    paired_interval,
    verdict,
)
from longtail.candidates import CandidateConfig, generate_candidates

pytestmark = pytest.mark.unit

C = dt.datetime(2024, 1, 10, tzinfo=dt.UTC)
END = C + dt.timedelta(days=3)


def _events(rows: list[tuple[dt.datetime, int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            S.EVENT_TIME: [r[0] for r in rows],
            S.USER_ID: [r[1] for r in rows],
            S.ITEM_ID: [r[2] for r in rows],
            S.EVENT_TYPE: [r[3] for r in rows],
            S.TRANSACTION_ID: [None] * len(rows),
        },
        schema=S.EVENTS,
    )


def _items(ids: list[int], *, cat: int = 1) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            S.ITEM_ID: ids,
            S.VALID_FROM: [C - dt.timedelta(days=30)] * n,
            S.CATEGORY_ID: [cat] * n,
            S.PRICE: [1.0] * n,
            S.AVAILABLE: [True] * n,
            S.TITLE: ["x"] * n,
        },
        schema=S.ITEMS,
    )


def _shop() -> pl.DataFrame:
    day = dt.timedelta(days=1)
    rows = []
    for u in range(1, 21):
        for i in range(1, 9):
            if (u + i) % 3:
                rows.append((C - day * (1 + (u * i) % 7), u, i, "view"))
    rows += [(C - day, 1, 1, "purchase"), (C - 2 * day, 2, 3, "cart")]
    # Planted: item 99 exists only after the cutoff (views, a cart and a purchase).
    rows += [(C + dt.timedelta(hours=2), u, 99, "view") for u in range(1, 21)]
    rows += [
        (C + dt.timedelta(hours=3), 1, 99, "purchase"),
        (C + dt.timedelta(hours=3), 2, 99, "cart"),
    ]
    rows += [
        (C + dt.timedelta(hours=5), 1, 1, "purchase"),
        (C + dt.timedelta(hours=5), 2, 3, "purchase"),
    ]
    return _events(rows)


def test_truth_is_the_holdout_target_events_less_items_bought_before() -> None:
    truth = holdout_truth(
        _shop(), cutoff=C, end=END, target_event="purchase", exclude_purchased=True
    )
    # user 1 bought item 1 before the cutoff: only item 99 counts; user 2 bought 3 (new).
    assert truth.rows() == [(1, 99), (2, 3)]
    keep = holdout_truth(
        _shop(), cutoff=C, end=END, target_event="purchase", exclude_purchased=False
    )
    assert keep.rows() == [(1, 1), (1, 99), (2, 3)]


def test_items_whose_only_events_lie_after_the_cutoff_never_reach_lists_or_candidates() -> None:
    events, items = _shop(), _items(list(range(1, 9)))
    users = pl.Series(range(1, 21))
    inp = BaselineInputs.build(events, items, as_of=C, window_days=30, exclude_purchased=True)
    lists = build_baselines(inp, users, k=5, seed=1)
    assert set(lists) == set(BASELINES)
    for frame in lists.values():
        assert 99 not in frame[S.ITEM_ID].to_list()
    assert 99 not in inp.available.to_list()
    cands, _ = generate_candidates(
        events,
        items,
        users,
        as_of=C,
        cfg=CandidateConfig(max_candidates=20, tail_share=0.2),
        seed=1,
    )
    assert 99 not in cands[S.ITEM_ID].to_list()
    # The pair features also see only events before the cutoff: user 2 carted item 3.
    u2 = cands.filter((pl.col(S.USER_ID) == 2) & (pl.col(S.ITEM_ID) == 3)).row(0, named=True)
    assert u2["pair_carts"] == 1.0
    assert u2["source"] == "history"


def test_baselines_never_list_items_the_user_bought_and_recent_is_most_recent_first() -> None:
    events, items = _shop(), _items(list(range(1, 9)))
    inp = BaselineInputs.build(events, items, as_of=C, window_days=30, exclude_purchased=True)
    lists = build_baselines(inp, pl.Series([1, 2]), k=8, seed=1)
    for frame in lists.values():
        assert frame.filter((pl.col(S.USER_ID) == 1) & (pl.col(S.ITEM_ID) == 1)).height == 0
    recent = lists["recent"].filter(pl.col(S.USER_ID) == 2)
    touched = (
        events.filter(
            (pl.col(S.USER_ID) == 2)
            & (pl.col(S.EVENT_TIME) < C)
            & (pl.col(S.EVENT_TYPE) != "purchase")
        )
        .group_by(S.ITEM_ID)
        .agg(pl.col(S.EVENT_TIME).max())
        .sort([S.EVENT_TIME, S.ITEM_ID], descending=[True, False])
    )
    assert recent[S.ITEM_ID].to_list() == touched[S.ITEM_ID].to_list()


def test_baselines_built_in_user_chunks_equal_the_lists_built_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events, items = _shop(), _items(list(range(1, 9)))
    inp = BaselineInputs.build(events, items, as_of=C, window_days=30, exclude_purchased=True)
    users = pl.Series(range(1, 21))
    whole = build_baselines(inp, users, k=4, seed=1)
    # 20 users in chunks of 3: seven calls, the last one short.
    monkeypatch.setattr(baselines, "USERS_PER_CHUNK", 3)
    chunked = build_baselines(inp, users, k=4, seed=1)
    for name in ("popular", "category_popular"):
        assert whole[name].height > 20
        assert chunked[name].equals(whole[name]), name


def _inputs(truth: pl.DataFrame, users: list[int], catalog: int) -> EvaluationInputs:
    return EvaluationInputs(
        truth=truth,
        users=pl.Series(users),
        k=2,
        buckets=pl.DataFrame({S.ITEM_ID: [1], S.POPULARITY_BUCKET: ["head"]}),
        catalog=pl.Series(range(1, catalog + 1)),
        popularity=pl.DataFrame({S.ITEM_ID: [1], "popularity": [5]}),
        item_users=pl.DataFrame({S.ITEM_ID: [1], "users": [3]}),
        n_users=3,
        rounds=1000,
        seed=0,
    )


def test_every_system_is_scored_on_the_same_users() -> None:
    truth = pl.DataFrame({S.USER_ID: [1, 2, 3], S.ITEM_ID: [1, 2, 3]})
    model = pl.DataFrame({S.USER_ID: [1, 2, 3], S.ITEM_ID: [1, 2, 9], "rank": [1, 1, 1]})
    # The baseline serves user 4 (not evaluated) and misses user 3 entirely.
    other = pl.DataFrame({S.USER_ID: [1, 2, 4], S.ITEM_ID: [5, 2, 3], "rank": [1, 1, 1]})
    ev = evaluate_systems({MODEL: model, "other": other}, _inputs(truth, [1, 2, 3], 10))
    users = ev.per_user.group_by("system").agg(pl.col(S.USER_ID).sort())
    assert all(u == [1, 2, 3] for u in users[S.USER_ID].to_list())
    assert ev.systems[MODEL]["recall_at_k"] == pytest.approx(2 / 3)
    assert ev.systems["other"]["recall_at_k"] == pytest.approx(1 / 3)
    assert ev.vs_baseline["other"]["recall_at_k"]["diff"] == pytest.approx(1 / 3)


def test_paired_interval_covers_the_mean_and_excludes_zero_for_a_clear_gain() -> None:
    rng = np.random.default_rng(0)
    gain = rng.normal(0.2, 0.5, 2000)
    iv = paired_interval(gain, rounds=1000, seed=1)
    assert iv["low"] < iv["diff"] < iv["high"]
    assert iv["low"] > 0
    same = paired_interval(rng.normal(0.0, 0.5, 2000), rounds=1000, seed=1)
    assert same["low"] < 0 < same["high"]
    assert "within noise" in verdict({"b": {"recall_at_k": same}}, k=20)
    assert "beat every baseline" in verdict({"b": {"recall_at_k": iv}}, k=20)


def test_candidate_recall_splits_by_source_and_sums_to_all() -> None:
    truth = pl.DataFrame({S.USER_ID: [1, 1, 2, 2], S.ITEM_ID: [1, 2, 3, 4]})
    cands = pl.DataFrame(
        {S.USER_ID: [1, 1, 2], S.ITEM_ID: [1, 2, 3], "source": ["history", "popular", "history"]}
    )
    out = candidate_recall(truth, cands)
    assert out == {"all": 0.75, "history": 0.5, "popular": 0.25}
