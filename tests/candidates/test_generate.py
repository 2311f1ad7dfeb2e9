from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from longtail import schema as S
from longtail.candidates import CandidateConfig, CandidatePlan, CoviewIndex, generate_candidates
from longtail.config import SyntheticSource
from longtail.ingest import generate

pytestmark = pytest.mark.unit
AS_OF = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def shop():  # type: ignore[no-untyped-def]
    return generate(
        SyntheticSource(n_users=400, n_items=300, days=20, n_leaf_categories=10), seed=3
    )


def _run(shop, users: list[int], **kw):  # type: ignore[no-untyped-def]
    cfg = CandidateConfig(**{"max_candidates": 60, "tail_share": 0.2, "popular": 30, **kw})
    return generate_candidates(
        shop.events, shop.items, pl.Series(S.USER_ID, users), as_of=AS_OF, cfg=cfg, seed=1
    )


def test_no_user_gets_an_item_twice_or_more_than_the_cap(shop) -> None:  # type: ignore[no-untyped-def]
    cands, _ = _run(shop, list(range(1, 401)))
    assert cands.select(S.USER_ID, S.ITEM_ID).is_duplicated().sum() == 0
    assert cands.group_by(S.USER_ID).len()["len"].max() <= 60


def test_tail_exploration_takes_its_configured_share(shop) -> None:  # type: ignore[no-untyped-def]
    cands, _ = _run(shop, list(range(1, 401)))
    per_user = cands.filter(pl.col("source") == "tail").group_by(S.USER_ID).len()["len"]
    assert per_user.max() <= 12
    assert per_user.median() == 12  # type: ignore[comparison-overlap]


def test_purchased_items_are_excluded_when_configured(shop) -> None:  # type: ignore[no-untyped-def]
    cands, _ = _run(shop, list(range(1, 401)))
    bought = (
        shop.events.filter((pl.col(S.EVENT_TYPE) == "purchase") & (pl.col(S.EVENT_TIME) < AS_OF))
        .select(S.USER_ID, S.ITEM_ID)
        .unique()
    )
    assert bought.height > 0
    assert cands.join(bought, on=[S.USER_ID, S.ITEM_ID]).height == 0
    kept, _ = _run(shop, list(range(1, 401)), exclude_purchased=False)
    assert kept.join(bought, on=[S.USER_ID, S.ITEM_ID]).height > 0


def test_unknown_users_get_the_cold_start_fallback(shop) -> None:  # type: ignore[no-untyped-def]
    cands, types = _run(shop, [1, 10_000_000])
    assert dict(types.iter_rows()) == {1: "history", 10_000_000: "cold_start"}
    cold = cands.filter(pl.col(S.USER_ID) == 10_000_000)
    assert set(cold["source"]) == {"popular", "tail"}
    assert cold.height > 0


def test_candidates_never_use_events_at_or_after_the_scoring_time(shop) -> None:  # type: ignore[no-untyped-def]
    # An item first viewed after AS_OF cannot be a co-view or category candidate.
    late = shop.events.filter(pl.col(S.EVENT_TIME) >= AS_OF)
    early_items = shop.events.filter(pl.col(S.EVENT_TIME) < AS_OF)[S.ITEM_ID].unique()
    only_late = late.filter(~pl.col(S.ITEM_ID).is_in(early_items.implode()))[S.ITEM_ID].unique()
    cands, _ = _run(shop, list(range(1, 401)))
    assert cands.filter(pl.col(S.ITEM_ID).is_in(only_late.implode())).height == 0


def test_rerun_gives_identical_candidates(shop) -> None:  # type: ignore[no-untyped-def]
    first, _ = _run(shop, list(range(1, 200)))
    second, _ = _run(shop, list(range(1, 200)))
    assert first.equals(second)


def test_candidates_built_per_chunk_of_users_equal_those_built_at_once(shop) -> None:  # type: ignore[no-untyped-def]
    events, items = shop.events, shop.items
    # Unsorted, with a cold-start user (10**9): the chunks still come out in user order.
    users = pl.Series([*range(40, 0, -1), 10**9], dtype=pl.Int64)
    kw = {"as_of": AS_OF, "cfg": CandidateConfig(max_candidates=30, tail_share=0.2), "seed": 3}
    whole, types = generate_candidates(events, items, users, **kw)
    plan = CandidatePlan(events, items, users, users_per_chunk=7, **kw)
    chunks = list(plan)
    assert len(chunks) == 6
    assert all(c[S.USER_ID].is_sorted() for c in chunks)
    assert pl.concat(chunks).equals(whole)
    assert plan.user_types.equals(types)
    assert whole.filter(pl.col("source") == "tail").height > 0


def test_a_plan_for_no_users_yields_one_empty_frame_with_every_column(shop) -> None:  # type: ignore[no-untyped-def]
    events, items = shop.events, shop.items
    cfg = CandidateConfig(max_candidates=30)
    plan = CandidatePlan(events, items, pl.Series([], dtype=pl.Int64), as_of=AS_OF, cfg=cfg, seed=3)
    (only,) = list(plan)
    assert only.height == 0
    assert "pair_views" in only.columns


def _self_join_pairs(views: pl.DataFrame, per_item: int) -> pl.DataFrame:
    """The co-view table as a self-join of daily views on (user, day): the definition."""
    daily = views.select(S.USER_ID, S.ITEM_ID, pl.col(S.EVENT_TIME).dt.date().alias("d")).unique()
    return (
        daily.join(daily, on=[S.USER_ID, "d"], suffix="_b")
        .filter(pl.col(S.ITEM_ID) != pl.col("item_id_b"))
        .group_by(S.ITEM_ID, "item_id_b")
        .len("co")
        .sort([S.ITEM_ID, "co", "item_id_b"], descending=[False, True, False])
        .group_by(S.ITEM_ID, maintain_order=True)
        .head(per_item)
    )


def test_coview_index_counts_what_a_self_join_of_the_windows_daily_views_counts(shop) -> None:  # type: ignore[no-untyped-def]
    views = shop.events.filter(pl.col(S.EVENT_TYPE) == "view")
    index = CoviewIndex(views)
    cfg = CandidateConfig(coview_per_item=5)
    start, end = dt.date(2024, 1, 4), dt.date(2024, 1, 12)
    in_window = views.filter(
        (pl.col(S.EVENT_TIME).dt.date() >= start) & (pl.col(S.EVENT_TIME).dt.date() < end)
    )
    some = pl.Series(S.ITEM_ID, [3, 1, 2, 50, 120, 10**9], pl.Int64)  # one never viewed
    expected = _self_join_pairs(in_window, 5)
    got = index.pairs(cfg=cfg, start=start, end=end, items=some, items_per_chunk=2)
    assert got.equals(expected.filter(pl.col(S.ITEM_ID).is_in(some.implode())))
    assert got[S.ITEM_ID].n_unique() == 5
    # Every item, in one go and a chunk of 7 items at a time.
    whole = index.pairs(cfg=cfg, start=start, end=end)
    assert whole.equals(expected)
    assert index.pairs(cfg=cfg, start=start, end=end, items_per_chunk=7).equals(expected)
    assert index.pairs(cfg=cfg).equals(_self_join_pairs(views, 5))


def test_a_shared_coview_index_gives_the_candidates_of_the_windows_own(shop) -> None:  # type: ignore[no-untyped-def]
    events, items = shop.events, shop.items
    # Built from every view of the log: later days lie outside the sliced window.
    index = CoviewIndex(events.filter(pl.col(S.EVENT_TYPE) == "view"))
    users = pl.Series([*range(1, 120), 10**9], dtype=pl.Int64)
    cfg = CandidateConfig(max_candidates=40, tail_share=0.2, window_days=7)
    for as_of in (AS_OF - dt.timedelta(days=6), AS_OF):
        kw = {"as_of": as_of, "cfg": cfg, "seed": 3}
        own = pl.concat(list(CandidatePlan(events, items, users, **kw)))
        shared = pl.concat(list(CandidatePlan(events, items, users, coview=index, **kw)))
        assert shared.equals(own)
        assert own.filter(pl.col("source") == "coview").height > 0


def test_a_shared_coview_index_refuses_a_scoring_time_inside_a_day(shop) -> None:  # type: ignore[no-untyped-def]
    index = CoviewIndex(shop.events.filter(pl.col(S.EVENT_TYPE) == "view"))
    users = pl.Series([1, 2], dtype=pl.Int64)
    with pytest.raises(ValueError, match="00:00 UTC"):
        CandidatePlan(
            shop.events, shop.items, users, as_of=AS_OF + dt.timedelta(hours=5),
            cfg=CandidateConfig(), seed=3, coview=index,
        )  # fmt: skip
