"""A seeded synthetic shop: long-tail popularity, category tastes, rare purchases with real signal.

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
from typing import Final

import numpy as np
import polars as pl

from longtail import schema as S
from longtail.config import SyntheticSource
from longtail.ingest.result import CanonicalTables

__all__ = ["CanonicalTables", "generate"]

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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def _solve_intercept(signal: np.ndarray, weight: np.ndarray, target: float) -> float:
    """Find c with sum(weight * sigmoid(c + signal)) / sum(weight) == target (bisection)."""
    lo, hi = -30.0, 30.0
    total = float(weight.sum())
    for _ in range(60):
        mid = (lo + hi) / 2
        rate = float((weight * _sigmoid(mid + signal)).sum()) / total
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


def generate(source: SyntheticSource, *, seed: int) -> CanonicalTables:
    """Generate a synthetic shop.

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
    n_top = cfg.n_top_categories
    leaf_top, categories = _categories(cfg, rng)
    n_leaf = cfg.n_leaf_categories
    start_us = int(dt.datetime.combine(cfg.start, dt.time(), tzinfo=dt.UTC).timestamp() * 1_000_000)
    end_us = start_us + cfg.days * _US_PER_DAY

    # ---- items: leaf (Zipf-ish leaf sizes), popularity (Zipf over a random rank), quality, price
    n_items = cfg.n_items
    leaf_w = 1.0 / np.arange(1, n_leaf + 1) ** 0.7
    item_leaf = rng.choice(n_leaf, size=n_items, p=leaf_w / leaf_w.sum())
    item_top = leaf_top[item_leaf]
    pop_rank = rng.permutation(n_items) + 1
    popularity = 1.0 / pop_rank.astype(np.float64) ** cfg.zipf_exponent
    quality = rng.normal(0.0, 0.7, n_items)
    leaf_log_price = rng.uniform(np.log(5.0), np.log(300.0), n_leaf)
    log_price = leaf_log_price[item_leaf] + rng.normal(0.0, 0.35, n_items)
    base_price = np.round(np.exp(log_price), 2)
    # one price change for a share of items, at a random time, by -30%..+30%
    changes = rng.random(n_items) < cfg.price_change_share
    change_at = start_us + rng.integers(1, cfg.days, n_items) * _US_PER_DAY
    change_mult = np.where(changes, rng.uniform(0.7, 1.3, n_items), 1.0)
    # an unavailability window for a share of items
    unavailable = rng.random(n_items) < cfg.unavailable_share
    off_at = start_us + rng.integers(0, max(cfg.days - 1, 1), n_items) * _US_PER_DAY
    on_at = off_at + rng.integers(1, 6, n_items) * _US_PER_DAY

    # ---- users: sparse tastes over top categories, activity, propensity, price sensitivity
    n_users = cfg.n_users
    taste = rng.dirichlet(np.full(n_top, 0.35), size=n_users)
    activity = rng.lognormal(0.0, 0.9, n_users)
    activity /= activity.mean()
    propensity = rng.normal(0.0, 0.6, n_users)
    price_sens = rng.uniform(0.2, 1.2, n_users)

    # ---- sessions
    lam = cfg.sessions_per_user_day * cfg.days * activity
    n_sess = rng.poisson(lam)
    sess_user = np.repeat(np.arange(n_users), n_sess)
    n_s = sess_user.size
    day = rng.integers(0, cfg.days, n_s)
    hour_w = 1.0 + 0.8 * np.sin((np.arange(24) - 14) / 24 * 2 * np.pi)  # evening peak
    hour = rng.choice(24, size=n_s, p=hour_w / hour_w.sum())
    sess_start = (
        start_us + day * _US_PER_DAY + hour * 3_600_000_000 + rng.integers(0, 3_600_000_000, n_s)
    )
    cum_taste = np.cumsum(taste, axis=1)
    sess_top = (rng.random(n_s)[:, None] > cum_taste[sess_user]).sum(axis=1)
    sess_top = np.minimum(sess_top, n_top - 1)
    sess_len = 1 + rng.poisson(max(cfg.views_per_session - 1.0, 0.0), n_s)

    # ---- views: items by popularity within the session's top category (+10% exploration)
    v_sess = np.repeat(np.arange(n_s), sess_len)
    n_v = v_sess.size
    v_user = sess_user[v_sess]
    gaps = rng.exponential(90e6, n_v)  # ~90 s between views
    csum = np.cumsum(gaps)
    first = np.repeat(np.cumsum(sess_len) - sess_len, sess_len)
    offset = csum - csum[first]  # 0 at the session's first view
    v_time = sess_start[v_sess] + offset.astype(np.int64)
    order = np.argsort(item_top, kind="stable")
    cw = np.cumsum(popularity[order])
    top_lo = np.searchsorted(item_top[order], np.arange(n_top), side="left")
    top_hi = np.searchsorted(item_top[order], np.arange(n_top), side="right")
    base = np.concatenate([[0.0], cw])
    lo_w, hi_w = base[top_lo], base[top_hi]
    v_top = sess_top[v_sess]
    has_items = hi_w[v_top] > lo_w[v_top]
    r = lo_w[v_top] + rng.random(n_v) * (hi_w[v_top] - lo_w[v_top])
    pick = order[np.clip(np.searchsorted(cw, r, side="right"), 0, n_items - 1)]
    explore = (rng.random(n_v) < 0.1) | ~has_items
    glob = np.cumsum(popularity)
    pick_glob = np.clip(np.searchsorted(glob, rng.random(n_v) * glob[-1]), 0, n_items - 1)
    v_item = np.where(explore, pick_glob, pick)
    keep = v_time < end_us
    v_user, v_item, v_time = v_user[keep], v_item[keep], v_time[keep]

    # ---- conversion signal: taste, quality, relative price, popularity, user propensity
    price_now = base_price[v_item] * np.where(v_time >= change_at[v_item], change_mult[v_item], 1.0)
    rel_price = np.log(price_now) - leaf_log_price[item_leaf[v_item]]
    taste_v = taste[v_user, item_top[v_item]]
    pop_z = np.log(popularity[v_item])
    pop_z = (pop_z - pop_z.mean()) / (pop_z.std() + 1e-9)
    signal = (
        1.2 * np.log(taste_v * n_top + 0.05)
        + 1.0 * quality[v_item]
        - 1.5 * price_sens[v_user] * rel_price
        + cfg.popularity_conversion * pop_z
        + propensity[v_user]
    )
    avail = ~(unavailable[v_item] & (v_time >= off_at[v_item]) & (v_time < on_at[v_item]))
    weight = avail.astype(np.float64)
    c_cart = _solve_intercept(signal, weight, cfg.cart_rate / max(weight.mean(), 1e-9))
    p_cart = _sigmoid(c_cart + signal) * avail
    carted = rng.random(v_time.size) < p_cart
    # purchase given cart: same signal at half strength, intercept solved for the overall rate
    p_cart_w = p_cart
    c_buy = _solve_intercept(
        0.5 * signal, p_cart_w, cfg.purchase_rate / max(float(p_cart.mean()), 1e-12)
    )
    bought = carted & (rng.random(v_time.size) < _sigmoid(c_buy + 0.5 * signal))
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
    ids_user = np.arange(1, n_users + 1, dtype=np.int64)
    ids_item = np.arange(1, n_items + 1, dtype=np.int64)
    view_src = np.concatenate([np.arange(v_time.size), r_idx, repeat])
    n_views = view_src.size
    times = np.concatenate(
        [v_time, return_view[r_idx], repeat_time, cart_time[c_idx], buy_time[b_idx]]
    )
    users = ids_user[np.concatenate([v_user[view_src], v_user[c_idx], v_user[b_idx]])]
    items = ids_item[np.concatenate([v_item[view_src], v_item[c_idx], v_item[b_idx]])]
    kinds = np.concatenate(
        [
            np.zeros(n_views, np.int8),
            np.ones(c_idx.size, np.int8),
            np.full(b_idx.size, 2, np.int8),
        ]
    )
    txn = np.full(times.size, -1, dtype=np.int64)
    txn[n_views + c_idx.size :] = np.arange(1, b_idx.size + 1)
    events = (
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

    # ---- item versions: the first, a price change, an unavailability window
    first_seen = start_us - 30 * _US_PER_DAY
    leaf_cat = (n_top + 1 + item_leaf).astype(np.int64)
    noun_idx = rng.integers(0, len(_NOUNS[0]), n_items)
    adj_idx = rng.integers(0, len(_ADJECTIVES), n_items)
    nouns = np.array(_NOUNS, dtype=object)[item_top % len(_NOUNS), noun_idx]
    titles = [f"{_ADJECTIVES[a]} {n} {i}" for a, n, i in zip(adj_idx, nouns, ids_item, strict=True)]
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
    ch = np.flatnonzero(changes)
    v1 = pl.DataFrame(
        {
            S.ITEM_ID: ids_item[ch],
            "t": change_at[ch],
            S.PRICE: np.round(base_price[ch] * change_mult[ch], 2),
        }
    )
    un = np.flatnonzero(unavailable)
    v2 = pl.DataFrame(
        {
            S.ITEM_ID: np.concatenate([ids_item[un], ids_item[un]]),
            "t": np.concatenate([off_at[un], on_at[un]]),
            S.AVAILABLE: np.concatenate([np.zeros(un.size, bool), np.ones(un.size, bool)]),
        }
    )
    versions = (
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
    items_tbl = S.conform(versions, S.ITEMS, table="items")
    return CanonicalTables(
        events=S.conform(events, S.EVENTS, table="events"),
        items=items_tbl,
        categories=S.conform(categories, S.CATEGORIES, table="categories"),
    )
