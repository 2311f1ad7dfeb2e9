"""Every synthetic data set of the project, seeded: a shop's events and two kinds of training rows.

* :func:`generate`: a synthetic shop (events, time-versioned items, categories),
  the ``source.kind = "synthetic"`` of ingest and the demo's data;
* :func:`make_training_rows` (and :func:`write_splits`): labelled training rows
  with a planted signal, for the train and tune jobs' smoke runs, tests and benchmarks;
* :func:`make_train_frame`: a small train split with the training set's shape, for
  the resample job's smoke run, tests and benchmarks.

The shop
--------
A seeded synthetic shop: long-tail popularity, category tastes, rare purchases with real signal.

Everything is vectorized with numpy (no Python loop per event or per session).

The generative story:

* a category tree of top categories and leaves; items sit in leaves, with a
  Zipf-like global popularity (a few head items take most views) and a latent
  quality that does *not* follow popularity, so tail items can convert well;
* users have sparse tastes over top categories (Dirichlet), an activity level,
  a buying propensity and a price sensitivity;
* sessions start at random times (busier in the evening); each session stays in
  one top category and views items in it by popularity, with some exploration;
* a view leads to a cart with a probability that grows with the user's taste
  for the category, the item's quality and a lower price than the leaf's norm,
  and moves with popularity by ``popularity_conversion`` (negative by default:
  niche items convert better once viewed, so many purchases are tail items); a
  cart leads to a purchase some minutes later, or, for ``consideration_share`` of
  purchases, on a later visit days after the cart (mean ``consideration_days``)
  that starts with a return view of the item. Intercepts are solved so the cart
  and purchase rates hit the configured values;
* ``repeat_view_share`` of views are followed by a repeat view of the same item
  in a later session (mean ``repeat_view_days`` later);
* prices change for a share of items at a random date, and some items are
  unavailable for a window (no purchase then). Items carry titles built from
  category vocabularies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
from scipy.special import expit

from longtail import schema as S
from longtail.config import SyntheticSource
from longtail.io import write_parquet
from longtail.paths import Layout
from longtail.tables import CanonicalTables

__all__ = [
    "CanonicalTables",
    "generate",
    "make_train_frame",
    "make_training_rows",
    "write_splits",
]

_US_PER_DAY: Final = 86_400_000_000
_NOUNS: Final = (
    ("lamp", "chair", "table", "shelf", "rug", "mirror", "vase", "cushion"),
    ("shirt", "dress", "jacket", "scarf", "boots", "jeans", "hat", "sweater"),
    ("phone", "charger", "speaker", "camera", "headset", "tablet", "cable", "watch"),
    ("novel", "atlas", "cookbook", "journal", "comic", "guide", "poster", "puzzle"),
    ("ball", "racket", "helmet", "bottle", "mat", "glove", "tent", "bike"),
    ("serum", "cream", "shampoo", "soap", "perfume", "brush", "lotion", "mask"),
    ("kettle", "pan", "knife", "blender", "mug", "plate", "toaster", "grater"),
    ("drill", "hammer", "saw", "ladder", "wrench", "tape", "glue", "level"),
)
_ADJECTIVES: Final = (
    "classic", "modern", "compact", "deluxe", "eco", "smart", "vintage", "premium",
    "basic", "pro", "soft", "bold", "mini", "ultra", "rustic", "urban",
)  # fmt: skip


def _solve_intercept(signal: np.ndarray, weight: np.ndarray, target: float) -> float:
    """Find c with sum(weight * sigmoid(c + signal)) / sum(weight) == target (bisection)."""
    lo, hi = -30.0, 30.0
    total = float(weight.sum())
    for _ in range(60):
        mid = (lo + hi) / 2
        rate = float((weight * expit(mid + signal)).sum()) / total
        if rate < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _categories(cfg: SyntheticSource, rng: np.random.Generator) -> tuple[np.ndarray, pl.DataFrame]:
    n_top, n_leaf = cfg.n_top_categories, cfg.n_leaf_categories
    top_ids = np.arange(1, n_top + 1, dtype=np.int64)
    leaf_ids = np.arange(n_top + 1, n_top + n_leaf + 1, dtype=np.int64)
    leaf_top = rng.integers(0, n_top, n_leaf)
    leaf_top[:n_top] = np.arange(n_top)  # every top category has a leaf
    categories = pl.DataFrame(
        {
            S.CATEGORY_ID: np.concatenate([top_ids, leaf_ids]),
            S.PARENT_ID: pl.Series(
                np.concatenate([np.full(n_top, -1), top_ids[leaf_top]]), dtype=pl.Int64
            ),
        }
    ).with_columns(
        pl.when(pl.col(S.PARENT_ID) < 0)
        .then(None)
        .otherwise(pl.col(S.PARENT_ID))
        .alias(S.PARENT_ID)
    )
    return leaf_top, categories


@dataclass(frozen=True)
class _Items:
    """The items' latent traits, prices and availability windows (index = item - 1)."""

    leaf: np.ndarray
    top: np.ndarray
    popularity: np.ndarray
    quality: np.ndarray
    leaf_log_price: np.ndarray
    base_price: np.ndarray
    changes: np.ndarray
    change_at: np.ndarray
    change_mult: np.ndarray
    unavailable: np.ndarray
    off_at: np.ndarray
    on_at: np.ndarray


@dataclass(frozen=True)
class _Users:
    """The users' tastes over top categories and their traits (index = user - 1)."""

    taste: np.ndarray
    activity: np.ndarray
    propensity: np.ndarray
    price_sens: np.ndarray


@dataclass(frozen=True)
class _Views:
    """One entry per view inside the window: who, what, when (microseconds)."""

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray


def _items(
    cfg: SyntheticSource, rng: np.random.Generator, leaf_top: np.ndarray, start_us: int
) -> _Items:
    """Leaf (Zipf-ish leaf sizes), popularity (Zipf over a random rank), quality, price."""
    n_items, n_leaf = cfg.n_items, cfg.n_leaf_categories
    leaf_w = 1.0 / np.arange(1, n_leaf + 1) ** 0.7
    item_leaf = rng.choice(n_leaf, size=n_items, p=leaf_w / leaf_w.sum())
    pop_rank = rng.permutation(n_items) + 1
    popularity = 1.0 / pop_rank.astype(np.float64) ** cfg.zipf_exponent
    quality = rng.normal(0.0, 0.7, n_items)
    leaf_log_price = rng.uniform(np.log(5.0), np.log(300.0), n_leaf)
    log_price = leaf_log_price[item_leaf] + rng.normal(0.0, 0.35, n_items)
    # one price change for a share of items, at a random time, by -30%..+30%
    changes = rng.random(n_items) < cfg.price_change_share
    change_at = start_us + rng.integers(1, cfg.days, n_items) * _US_PER_DAY
    change_mult = np.where(changes, rng.uniform(0.7, 1.3, n_items), 1.0)
    # an unavailability window for a share of items
    unavailable = rng.random(n_items) < cfg.unavailable_share
    off_at = start_us + rng.integers(0, max(cfg.days - 1, 1), n_items) * _US_PER_DAY
    on_at = off_at + rng.integers(1, 6, n_items) * _US_PER_DAY
    return _Items(
        leaf=item_leaf,
        top=leaf_top[item_leaf],
        popularity=popularity,
        quality=quality,
        leaf_log_price=leaf_log_price,
        base_price=np.round(np.exp(log_price), 2),
        changes=changes,
        change_at=change_at,
        change_mult=change_mult,
        unavailable=unavailable,
        off_at=off_at,
        on_at=on_at,
    )


def _users(cfg: SyntheticSource, rng: np.random.Generator) -> _Users:
    """Sparse tastes over top categories, activity, propensity, price sensitivity."""
    n_users = cfg.n_users
    taste = rng.dirichlet(np.full(cfg.n_top_categories, 0.35), size=n_users)
    activity = rng.lognormal(0.0, 0.9, n_users)
    activity /= activity.mean()
    propensity = rng.normal(0.0, 0.6, n_users)
    price_sens = rng.uniform(0.2, 1.2, n_users)
    return _Users(taste=taste, activity=activity, propensity=propensity, price_sens=price_sens)


def _sessions(
    cfg: SyntheticSource, rng: np.random.Generator, users: _Users, start_us: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sessions per user by activity, at evening-heavy hours, each in one top category.

    Returns each session's user, start time, top category and number of views.
    """
    n_top = cfg.n_top_categories
    lam = cfg.sessions_per_user_day * cfg.days * users.activity
    n_sess = rng.poisson(lam)
    sess_user = np.repeat(np.arange(cfg.n_users), n_sess)
    n_s = sess_user.size
    day = rng.integers(0, cfg.days, n_s)
    hour_w = 1.0 + 0.8 * np.sin((np.arange(24) - 14) / 24 * 2 * np.pi)  # evening peak
    hour = rng.choice(24, size=n_s, p=hour_w / hour_w.sum())
    sess_start = (
        start_us + day * _US_PER_DAY + hour * 3_600_000_000 + rng.integers(0, 3_600_000_000, n_s)
    )
    cum_taste = np.cumsum(users.taste, axis=1)
    sess_top = (rng.random(n_s)[:, None] > cum_taste[sess_user]).sum(axis=1)
    sess_top = np.minimum(sess_top, n_top - 1)
    sess_len = 1 + rng.poisson(max(cfg.views_per_session - 1.0, 0.0), n_s)
    return sess_user, sess_start, sess_top, sess_len


def _views(
    cfg: SyntheticSource,
    rng: np.random.Generator,
    items: _Items,
    users: _Users,
    *,
    start_us: int,
    end_us: int,
) -> _Views:
    """Items by popularity within the session's top category (+10% exploration)."""
    n_top, n_items = cfg.n_top_categories, cfg.n_items
    sess_user, sess_start, sess_top, sess_len = _sessions(cfg, rng, users, start_us)
    n_s = sess_user.size
    v_sess = np.repeat(np.arange(n_s), sess_len)
    n_v = v_sess.size
    v_user = sess_user[v_sess]
    gaps = rng.exponential(90e6, n_v)  # ~90 s between views
    csum = np.cumsum(gaps)
    first = np.repeat(np.cumsum(sess_len) - sess_len, sess_len)
    offset = csum - csum[first]  # 0 at the session's first view
    v_time = sess_start[v_sess] + offset.astype(np.int64)
    order = np.argsort(items.top, kind="stable")
    cw = np.cumsum(items.popularity[order])
    top_lo = np.searchsorted(items.top[order], np.arange(n_top), side="left")
    top_hi = np.searchsorted(items.top[order], np.arange(n_top), side="right")
    base = np.concatenate([[0.0], cw])
    lo_w, hi_w = base[top_lo], base[top_hi]
    v_top = sess_top[v_sess]
    has_items = hi_w[v_top] > lo_w[v_top]
    r = lo_w[v_top] + rng.random(n_v) * (hi_w[v_top] - lo_w[v_top])
    pick = order[np.clip(np.searchsorted(cw, r, side="right"), 0, n_items - 1)]
    explore = (rng.random(n_v) < 0.1) | ~has_items
    glob = np.cumsum(items.popularity)
    pick_glob = np.clip(np.searchsorted(glob, rng.random(n_v) * glob[-1]), 0, n_items - 1)
    v_item = np.where(explore, pick_glob, pick)
    keep = v_time < end_us
    return _Views(user=v_user[keep], item=v_item[keep], time=v_time[keep])


def _conversion_signal(
    cfg: SyntheticSource, items: _Items, users: _Users, views: _Views
) -> tuple[np.ndarray, np.ndarray]:
    """Each view's log-odds signal (taste, quality, relative price, popularity, propensity).

    Returns the signal and whether the item was available at the view.
    """
    v_user, v_item, v_time = views.user, views.item, views.time
    price_now = items.base_price[v_item] * np.where(
        v_time >= items.change_at[v_item], items.change_mult[v_item], 1.0
    )
    rel_price = np.log(price_now) - items.leaf_log_price[items.leaf[v_item]]
    taste_v = users.taste[v_user, items.top[v_item]]
    pop_z = np.log(items.popularity[v_item])
    pop_z = (pop_z - pop_z.mean()) / (pop_z.std() + 1e-9)
    signal = (
        1.2 * np.log(taste_v * cfg.n_top_categories + 0.05)
        + 1.0 * items.quality[v_item]
        - 1.5 * users.price_sens[v_user] * rel_price
        + cfg.popularity_conversion * pop_z
        + users.propensity[v_user]
    )
    avail = ~(
        items.unavailable[v_item]
        & (v_time >= items.off_at[v_item])
        & (v_time < items.on_at[v_item])
    )
    return signal, avail


def _events(
    cfg: SyntheticSource,
    rng: np.random.Generator,
    items: _Items,
    users: _Users,
    views: _Views,
    *,
    end_us: int,
) -> pl.DataFrame:
    """Views, carts and purchases (with return and repeat views) as one event table."""
    v_user, v_item, v_time = views.user, views.item, views.time
    signal, avail = _conversion_signal(cfg, items, users, views)
    weight = avail.astype(np.float64)
    c_cart = _solve_intercept(signal, weight, cfg.cart_rate / max(weight.mean(), 1e-9))
    p_cart = expit(c_cart + signal) * avail
    carted = rng.random(v_time.size) < p_cart
    # purchase given cart: same signal at half strength, intercept solved for the overall rate
    p_cart_w = p_cart
    c_buy = _solve_intercept(
        0.5 * signal, p_cart_w, cfg.purchase_rate / max(float(p_cart.mean()), 1e-12)
    )
    bought = carted & (rng.random(v_time.size) < expit(c_buy + 0.5 * signal))
    cart_time = v_time + rng.exponential(120e6, v_time.size).astype(np.int64) + 1_000_000
    buy_time = cart_time + rng.exponential(1_800e6, v_time.size).astype(np.int64) + 1_000_000
    # Consideration: some purchases come on a later visit, after a return view.
    later = rng.random(v_time.size) < cfg.consideration_share
    delay = rng.exponential(cfg.consideration_days * _US_PER_DAY, v_time.size).astype(np.int64)
    buy_time = np.where(later, buy_time + delay, buy_time)
    return_view = buy_time - rng.integers(30_000_000, 600_000_000, v_time.size)

    c_idx = np.flatnonzero(carted & (cart_time < end_us))
    b_idx = np.flatnonzero(bought & (buy_time < end_us) & (cart_time < end_us))
    r_idx = b_idx[later[b_idx] & (return_view[b_idx] > cart_time[b_idx])]
    repeat = np.flatnonzero(rng.random(v_time.size) < cfg.repeat_view_share)
    repeat_time = v_time[repeat] + rng.exponential(
        cfg.repeat_view_days * _US_PER_DAY, repeat.size
    ).astype(np.int64)
    repeat = repeat[repeat_time < end_us]
    repeat_time = repeat_time[repeat_time < end_us]
    ids_user = np.arange(1, cfg.n_users + 1, dtype=np.int64)
    ids_item = np.arange(1, cfg.n_items + 1, dtype=np.int64)
    view_src = np.concatenate([np.arange(v_time.size), r_idx, repeat])
    n_views = view_src.size
    times = np.concatenate(
        [v_time, return_view[r_idx], repeat_time, cart_time[c_idx], buy_time[b_idx]]
    )
    users_col = ids_user[np.concatenate([v_user[view_src], v_user[c_idx], v_user[b_idx]])]
    items_col = ids_item[np.concatenate([v_item[view_src], v_item[c_idx], v_item[b_idx]])]
    kinds = np.concatenate(
        [
            np.zeros(n_views, np.int8),
            np.ones(c_idx.size, np.int8),
            np.full(b_idx.size, 2, np.int8),
        ]
    )
    txn = np.full(times.size, -1, dtype=np.int64)
    txn[n_views + c_idx.size :] = np.arange(1, b_idx.size + 1)
    return _event_table(times, users_col, items_col, kinds, txn)


def _event_table(
    times: np.ndarray, users: np.ndarray, items: np.ndarray, kinds: np.ndarray, txn: np.ndarray
) -> pl.DataFrame:
    """The canonical event columns from arrays (kind 0/1/2 = view/cart/purchase)."""
    return (
        pl.DataFrame(
            {
                "t": times,
                S.USER_ID: users,
                S.ITEM_ID: items,
                "k": kinds,
                "txn": txn,
            }
        )
        .select(
            pl.from_epoch("t", time_unit="us").dt.replace_time_zone("UTC").alias(S.EVENT_TIME),
            S.USER_ID,
            S.ITEM_ID,
            pl.col("k")
            .replace_strict({0: "view", 1: "cart", 2: "purchase"}, return_dtype=pl.String)
            .alias(S.EVENT_TYPE),
            pl.when(pl.col("txn") > 0)
            .then(pl.format("T{}", pl.col("txn")))
            .otherwise(None)
            .alias(S.TRANSACTION_ID),
        )
        .sort(S.EVENT_TIME, S.USER_ID, S.ITEM_ID, S.EVENT_TYPE)
    )


def _item_versions(
    cfg: SyntheticSource, rng: np.random.Generator, items: _Items, *, start_us: int, end_us: int
) -> pl.DataFrame:
    """Item versions: the first, a price change, an unavailability window."""
    n_top, n_items = cfg.n_top_categories, cfg.n_items
    ids_item = np.arange(1, n_items + 1, dtype=np.int64)
    first_seen = start_us - 30 * _US_PER_DAY
    leaf_cat = (n_top + 1 + items.leaf).astype(np.int64)
    noun_idx = rng.integers(0, len(_NOUNS[0]), n_items)
    adj_idx = rng.integers(0, len(_ADJECTIVES), n_items)
    nouns = np.array(_NOUNS, dtype=object)[items.top % len(_NOUNS), noun_idx]
    titles = [f"{_ADJECTIVES[a]} {n} {i}" for a, n, i in zip(adj_idx, nouns, ids_item, strict=True)]
    base_price, change_mult = items.base_price, items.change_mult
    v0 = pl.DataFrame(
        {
            S.ITEM_ID: ids_item,
            "t": np.full(n_items, first_seen),
            S.CATEGORY_ID: leaf_cat,
            S.PRICE: base_price,
            S.AVAILABLE: np.ones(n_items, bool),
            S.TITLE: titles,
        }
    )
    ch = np.flatnonzero(items.changes)
    v1 = pl.DataFrame(
        {
            S.ITEM_ID: ids_item[ch],
            "t": items.change_at[ch],
            S.PRICE: np.round(base_price[ch] * change_mult[ch], 2),
        }
    )
    un = np.flatnonzero(items.unavailable)
    v2 = pl.DataFrame(
        {
            S.ITEM_ID: np.concatenate([ids_item[un], ids_item[un]]),
            "t": np.concatenate([items.off_at[un], items.on_at[un]]),
            S.AVAILABLE: np.concatenate([np.zeros(un.size, bool), np.ones(un.size, bool)]),
        }
    )
    return (
        pl.concat([v0, v1, v2], how="diagonal_relaxed")
        .filter(pl.col("t") < end_us)
        .group_by(S.ITEM_ID, "t")
        .agg(pl.all().drop_nulls().last())
        .sort(S.ITEM_ID, "t")
        .with_columns(
            pl.col(S.CATEGORY_ID, S.PRICE, S.AVAILABLE, S.TITLE).forward_fill().over(S.ITEM_ID)
        )
        .with_columns(
            pl.from_epoch("t", time_unit="us").dt.replace_time_zone("UTC").alias(S.VALID_FROM)
        )
    )


def generate(source: SyntheticSource, *, seed: int) -> CanonicalTables:
    """Generate a synthetic shop.

    The parts draw from one generator in a fixed order (categories, items, users,
    views, events, item versions), so the same seed gives the same shop.

    Parameters
    ----------
    source
        Size and behaviour of the shop.
    seed
        Seed; the same seed and config give identical tables.

    Returns
    -------
    CanonicalTables
        Events over ``[start, start + days)``, time-versioned items, categories.
    """
    cfg = source
    rng = np.random.default_rng(seed)
    leaf_top, categories = _categories(cfg, rng)
    start_us = int(dt.datetime.combine(cfg.start, dt.time(), tzinfo=dt.UTC).timestamp() * 1_000_000)
    end_us = start_us + cfg.days * _US_PER_DAY
    items = _items(cfg, rng, leaf_top, start_us)
    users = _users(cfg, rng)
    views = _views(cfg, rng, items, users, start_us=start_us, end_us=end_us)
    events = _events(cfg, rng, items, users, views, end_us=end_us)
    versions = _item_versions(cfg, rng, items, start_us=start_us, end_us=end_us)
    return CanonicalTables(
        events=S.conform(events, S.EVENTS, table="events"),
        items=S.conform(versions, S.ITEMS, table="items"),
        categories=S.conform(categories, S.CATEGORIES, table="categories"),
    )


# ------------------------------------------------------------------ training rows

_RECENT = S.USER_RECENT_ITEMS


def make_training_rows(
    *,
    n_rows: int = 20_000,
    n_users: int = 800,
    n_items: int = 1_000,
    n_categories: int = 12,
    base_rate: float = 0.03,
    recent_items: int = 5,
    seed: int = 0,
) -> pl.DataFrame:
    """Return labelled training rows with a planted signal, split by time.

    The true log-odds are ``intercept + 1.2 * user_propensity + 1.0 * item_quality
    + 1.0 * [item in the user's favourite category]``; the first two are observed
    with noise as ``user_propensity_score`` and ``item_quality_score``, the third
    through ``user_recent_items`` (items mostly from the favourite category) and
    the user id. The intercept is set for roughly ``base_rate`` positives.
    """
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.1
    popularity /= popularity.sum()
    item_ids = np.arange(1, n_items + 1, dtype=np.int64) * 7 + 1000
    item_cat = rng.integers(0, n_categories, n_items)
    item_quality = rng.normal(size=n_items)
    cum = np.cumsum(popularity)
    bucket = np.where(cum <= 0.5, "head", np.where(cum <= 0.8, "torso", "tail"))
    user_ids = np.arange(1, n_users + 1, dtype=np.int64) * 13 + 5
    user_prop = rng.normal(size=n_users)
    user_fav = rng.integers(0, n_categories, n_users)

    u = rng.integers(0, n_users, n_rows)
    # Users view their favourite category more often.
    fav_pick = rng.random(n_rows) < 0.3
    i = rng.choice(n_items, size=n_rows, p=popularity)
    by_cat = [np.flatnonzero(item_cat == c) for c in range(n_categories)]
    for row in np.flatnonzero(fav_pick):
        pool = by_cat[user_fav[u[row]]]
        if pool.size:
            i[row] = rng.choice(pool)
    match = (item_cat[i] == user_fav[u]).astype(np.float64)
    signal = 1.2 * user_prop[u] + 1.0 * item_quality[i] + 1.0 * match
    intercept = _intercept(signal, base_rate)
    label = (rng.random(n_rows) < expit(intercept + signal)).astype(np.int8)

    times, split = _times_and_splits(rng, n_rows)
    columns: dict[str, object] = {
        S.USER_ID: user_ids[u],
        S.ITEM_ID: item_ids[i],
        S.EVENT_TIME: times,
        S.LABEL: label,
        S.SPLIT: split,
        S.POPULARITY_BUCKET: bucket[i],
        S.ITEM_CATEGORY: item_cat[i].astype(np.int64) + 100,
        "user_propensity_score": user_prop[u] + rng.normal(scale=0.3, size=n_rows),
        "item_quality_score": item_quality[i] + rng.normal(scale=0.3, size=n_rows),
        "item_popularity": popularity[i] * n_items,
    }
    columns.update(_unrelated_columns(rng, popularity[i] * n_items))
    frame = pl.DataFrame(columns).with_columns(
        pl.col(S.EVENT_TIME).cast(S.TIME),
        pl.col(S.LABEL).cast(pl.Int8),
        # Nullable like real point-in-time features: unknown conversion rates and prices.
        pl.when(pl.col("user_views_30d") > 0)
        .then(pl.col("user_purchases_30d") / pl.col("user_views_30d"))
        .otherwise(None)
        .alias("user_conversion_rate_30d"),
        pl.when(pl.Series(rng.random(n_rows) < 0.1))
        .then(None)
        .otherwise(pl.col("item_price"))
        .alias("item_price"),
    )
    if recent_items > 0:
        pools = [by_cat[user_fav[user]] for user in u]
        lists = _recent_lists(rng, pools, item_ids, max_length=recent_items)
        frame = frame.with_columns(pl.Series(_RECENT, lists, dtype=pl.List(pl.Int64)))
    return frame


def _times_and_splits(
    rng: np.random.Generator, n_rows: int
) -> tuple[list[dt.datetime], np.ndarray]:
    """Sorted row times over 30 days from 2024-01-01, split 70/15/15 by time."""
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    seconds = np.sort(rng.integers(0, 30 * 86_400, n_rows))
    times = [start + dt.timedelta(seconds=int(s)) for s in seconds]
    frac = seconds / (30 * 86_400)
    return times, np.where(frac < 0.7, "train", np.where(frac < 0.85, "validation", "test"))


def _unrelated_columns(rng: np.random.Generator, item_popularity: np.ndarray) -> dict[str, object]:
    """Activity counts, price, age, availability and noise: features without planted signal."""
    n_rows = item_popularity.size
    columns: dict[str, object] = {}
    for window in (1, 7, 30):
        columns[f"user_views_{window}d"] = rng.poisson(window * 0.8, n_rows).astype(np.int64)
        columns[f"user_purchases_{window}d"] = rng.poisson(window * 0.02, n_rows).astype(np.int64)
    for window in (7, 30):
        columns[f"item_views_{window}d"] = rng.poisson(item_popularity * window)
    columns["item_price"] = np.exp(rng.normal(3.0, 0.8, n_rows))
    columns["item_age_days"] = rng.integers(0, 365, n_rows).astype(np.float64)
    columns["item_available"] = rng.random(n_rows) < 0.95
    for k in range(5):
        columns[f"user_noise_{k}"] = rng.normal(size=n_rows)
    return columns


def _recent_lists(
    rng: np.random.Generator, pools: list[np.ndarray], item_ids: np.ndarray, *, max_length: int
) -> list[list[int]]:
    """Each row's recent items: 0..max_length picks, 70% from its user's favourite category."""
    lists: list[list[int]] = []
    for pool in pools:
        length = int(rng.integers(0, max_length + 1))
        picks = [
            int(
                item_ids[rng.choice(pool)]
                if rng.random() < 0.7 and pool.size
                else rng.choice(item_ids)
            )
            for _ in range(length)
        ]
        lists.append(picks)
    return lists


def _intercept(signal: np.ndarray, rate: float) -> float:
    lo, hi = -20.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(np.mean(expit(mid + signal))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def write_splits(layout: Layout, rows: pl.DataFrame) -> dict[str, Path]:
    """Write ``rows`` split by their ``split`` column to ``training/{split}.parquet``."""
    out = {}
    for name in ("train", "validation", "test"):
        path = layout.split(name)
        write_parquet(rows.filter(pl.col(S.SPLIT) == name), path)
        out[name] = path
    return out


# ------------------------------------------------------------------ a train split


def make_train_frame(
    n_rows: int,
    *,
    n_features: int = 8,
    positive_rate: float = 0.02,
    seed: int = 0,
    split: str = "train",
) -> pl.DataFrame:
    """Return ``n_rows`` labelled rows shaped like ``training/train.parquet``.

    Dense features alternate float (some nullable) and integer columns, plus one
    boolean; positives are shifted along every feature (a planted signal) and are
    about ``positive_rate`` of the rows in every popularity bucket.

    Parameters
    ----------
    n_rows
        Number of rows.
    n_features
        Number of dense ``user_*``/``item_*`` feature columns (at least 3).
    positive_rate
        Share of label 1, per bucket.
    seed
        Seed of the generator.
    split
        Value of the ``split`` column.
    """
    rng = np.random.default_rng(seed)
    n_pos = max(1, round(n_rows * positive_rate))
    label = np.zeros(n_rows, dtype=np.int64)
    label[rng.choice(n_rows, size=n_pos, replace=False)] = 1
    bucket = rng.choice(np.array(S.BUCKETS), size=n_rows, p=[0.5, 0.3, 0.2])
    n_items = max(10, n_rows // 20)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    columns: dict[str, pl.Series] = {
        S.USER_ID: pl.Series(S.USER_ID, rng.integers(0, max(5, n_rows // 10), n_rows), pl.Int64),
        S.ITEM_ID: pl.Series(S.ITEM_ID, rng.integers(0, n_items, n_rows), pl.Int64),
        S.EVENT_TIME: (
            pl.Series(S.EVENT_TIME, rng.permutation(n_rows).astype(np.int64) * 7_000_000)
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC")
            .dt.offset_by(f"{int(start.timestamp())}s")
            .cast(S.TIME)
        ),
        S.ITEM_CATEGORY: pl.Series(S.ITEM_CATEGORY, rng.integers(0, 12, n_rows), pl.Int64),
        S.POPULARITY_BUCKET: pl.Series(S.POPULARITY_BUCKET, bucket, pl.String),
    }
    shift = label * 1.5
    for j in range(max(3, n_features) - 1):
        prefix = "user" if j % 2 == 0 else "item"
        base = rng.normal(0.0, 1.0, n_rows) + shift
        if j % 3 == 2:
            values = np.maximum(0, np.round(np.exp(base))).astype(np.int64)
            columns[f"{prefix}_count_{j}"] = pl.Series(f"{prefix}_count_{j}", values, pl.Int64)
        else:
            series = pl.Series(f"{prefix}_value_{j}", base * (j + 1), pl.Float64)
            if j % 3 == 1:
                nulls = rng.random(n_rows) < 0.1
                series = pl.select(
                    pl.when(pl.lit(pl.Series(nulls)))
                    .then(None)
                    .otherwise(series)
                    .alias(series.name)
                ).to_series()
            columns[series.name] = series
    columns["user_is_returning"] = pl.Series(
        "user_is_returning", rng.random(n_rows) < 0.3 + 0.4 * label, pl.Boolean
    )
    columns[S.LABEL] = pl.Series(S.LABEL, label, pl.Int64)
    columns[S.SPLIT] = pl.Series(S.SPLIT, [split] * n_rows, pl.String)
    return pl.DataFrame(list(columns.values()))
