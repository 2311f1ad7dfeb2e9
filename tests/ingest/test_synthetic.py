from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from longtail import schema as S
from longtail.config import SyntheticSource
from longtail.synthetic import generate

pytestmark = pytest.mark.unit
SMALL = SyntheticSource(n_users=800, n_items=600, days=20, n_leaf_categories=12)


@pytest.fixture(scope="module")
def shop():  # type: ignore[no-untyped-def]
    return generate(SMALL, seed=11)


def test_generator_is_deterministic_for_a_seed(shop) -> None:  # type: ignore[no-untyped-def]
    again = generate(SMALL, seed=11)
    assert shop.events.equals(again.events)
    assert shop.items.equals(again.items)
    assert shop.categories.equals(again.categories)


def test_generator_differs_across_seeds(shop) -> None:  # type: ignore[no-untyped-def]
    assert not shop.events.equals(generate(SMALL, seed=12).events)


def test_tables_follow_the_canonical_schema(shop) -> None:  # type: ignore[no-untyped-def]
    assert dict(shop.events.schema) == S.EVENTS
    assert dict(shop.items.schema) == S.ITEMS
    assert dict(shop.categories.schema) == S.CATEGORIES
    assert set(shop.events[S.EVENT_TYPE].unique()) == set(S.EVENT_TYPES)


def test_purchases_are_rare(shop) -> None:  # type: ignore[no-untyped-def]
    counts = dict(shop.events.group_by(S.EVENT_TYPE).len().iter_rows())
    rate = counts["purchase"] / counts["view"]
    assert 0.01 <= rate <= 0.03


def test_item_popularity_has_a_long_tail(shop) -> None:  # type: ignore[no-untyped-def]
    views = (
        shop.events.filter(pl.col(S.EVENT_TYPE) == "view")
        .group_by(S.ITEM_ID)
        .len()
        .sort("len", descending=True)["len"]
        .to_numpy()
    )
    all_items = np.concatenate([views, np.zeros(SMALL.n_items - views.size)])
    top10 = all_items[: SMALL.n_items // 10].sum() / all_items.sum()
    assert top10 > 0.5  # the head: 10% of items take most views
    x = np.sort(all_items)
    n = x.size
    gini = (2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum())
    assert gini > 0.6


def test_events_lie_in_the_configured_window(shop) -> None:  # type: ignore[no-untyped-def]
    t = shop.events[S.EVENT_TIME]
    assert t.min().date() >= SMALL.start  # type: ignore[union-attr]
    assert (t.max() - t.min()).days < SMALL.days  # type: ignore[operator]


def test_every_purchase_follows_a_cart_of_the_same_item(shop) -> None:  # type: ignore[no-untyped-def]
    ev = shop.events
    buys = ev.filter(pl.col(S.EVENT_TYPE) == "purchase")
    carts = ev.filter(pl.col(S.EVENT_TYPE) == "cart")
    joined = buys.join(carts, on=[S.USER_ID, S.ITEM_ID], suffix="_cart").filter(
        pl.col("event_time_cart") < pl.col(S.EVENT_TIME)
    )
    assert joined.select(S.TRANSACTION_ID).n_unique() == buys.height
    assert buys[S.TRANSACTION_ID].null_count() == 0


def test_prices_change_over_time_and_titles_come_from_vocabularies(shop) -> None:  # type: ignore[no-untyped-def]
    versions = shop.items.group_by(S.ITEM_ID).agg(pl.col(S.PRICE).n_unique().alias("n"))
    assert versions.filter(pl.col("n") > 1).height > 0
    assert shop.items[S.TITLE].null_count() == 0
    assert shop.items.filter(~pl.col(S.AVAILABLE)).height > 0


def test_conversion_depends_on_user_taste(shop) -> None:  # type: ignore[no-untyped-def]
    # Planted signal: users buy in the top categories they browse most.
    ev = shop.events.join(
        shop.items.unique(S.ITEM_ID).select(S.ITEM_ID, S.CATEGORY_ID), on=S.ITEM_ID
    )
    share = ev.filter(pl.col(S.EVENT_TYPE) == "view").group_by(S.USER_ID, S.CATEGORY_ID).len()
    fav = share.sort("len", descending=True).unique(S.USER_ID, keep="first")
    views = ev.filter(pl.col(S.EVENT_TYPE) == "view").join(
        fav.select(S.USER_ID, pl.col(S.CATEGORY_ID).alias("fav")), on=S.USER_ID
    )
    buys = ev.filter(pl.col(S.EVENT_TYPE) == "purchase").join(
        fav.select(S.USER_ID, pl.col(S.CATEGORY_ID).alias("fav")), on=S.USER_ID
    )
    in_fav = buys.filter(pl.col(S.CATEGORY_ID) == pl.col("fav")).height / max(
        views.filter(pl.col(S.CATEGORY_ID) == pl.col("fav")).height, 1
    )
    out_fav = buys.filter(pl.col(S.CATEGORY_ID) != pl.col("fav")).height / max(
        views.filter(pl.col(S.CATEGORY_ID) != pl.col("fav")).height, 1
    )
    assert in_fav > out_fav
