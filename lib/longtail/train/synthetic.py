"""Synthetic training rows with a planted signal, for tests, smoke runs and benchmarks.

The frame has the shape of the real training set (keys, label, split, popularity
bucket, category, ~20 ``user_*``/``item_*`` dense features, some nullable, and an
optional ``user_recent_items`` list), and a known dependence of the label on a
few features, so a model that learns must beat one trained on shuffled labels.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from longtail.io import write_parquet
from longtail.paths import Layout
from longtail.resampling import ClassCounts, SamplingReport
from longtail.schema import (
    EVENT_TIME,
    ITEM_CATEGORY,
    ITEM_ID,
    LABEL,
    POPULARITY_BUCKET,
    SPLIT,
    TIME,
    USER_ID,
    USER_RECENT_ITEMS,
)

__all__ = ["make_training_rows", "write_splits", "write_undersampled"]

_RECENT = USER_RECENT_ITEMS


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
    label = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-(intercept + signal)))).astype(np.int8)

    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    seconds = np.sort(rng.integers(0, 30 * 86_400, n_rows))
    times = [start + dt.timedelta(seconds=int(s)) for s in seconds]
    frac = seconds / (30 * 86_400)
    split = np.where(frac < 0.7, "train", np.where(frac < 0.85, "validation", "test"))

    columns: dict[str, object] = {
        USER_ID: user_ids[u],
        ITEM_ID: item_ids[i],
        EVENT_TIME: times,
        LABEL: label,
        SPLIT: split,
        POPULARITY_BUCKET: bucket[i],
        ITEM_CATEGORY: item_cat[i].astype(np.int64) + 100,
        "user_propensity_score": user_prop[u] + rng.normal(scale=0.3, size=n_rows),
        "item_quality_score": item_quality[i] + rng.normal(scale=0.3, size=n_rows),
        "item_popularity": popularity[i] * n_items,
    }
    for window in (1, 7, 30):
        columns[f"user_views_{window}d"] = rng.poisson(window * 0.8, n_rows).astype(np.int64)
        columns[f"user_purchases_{window}d"] = rng.poisson(window * 0.02, n_rows).astype(np.int64)
    for window in (7, 30):
        columns[f"item_views_{window}d"] = rng.poisson(popularity[i] * n_items * window)
    columns["item_price"] = np.exp(rng.normal(3.0, 0.8, n_rows))
    columns["item_age_days"] = rng.integers(0, 365, n_rows).astype(np.float64)
    columns["item_available"] = rng.random(n_rows) < 0.95
    for k in range(5):
        columns[f"user_noise_{k}"] = rng.normal(size=n_rows)
    frame = pl.DataFrame(columns).with_columns(
        pl.col(EVENT_TIME).cast(TIME),
        pl.col(LABEL).cast(pl.Int8),
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
        lists: list[list[int]] = []
        for r in range(n_rows):
            length = int(rng.integers(0, recent_items + 1))
            pool = by_cat[user_fav[u[r]]]
            picks = [
                int(
                    item_ids[rng.choice(pool)]
                    if rng.random() < 0.7 and pool.size
                    else rng.choice(item_ids)
                )
                for _ in range(length)
            ]
            lists.append(picks)
        frame = frame.with_columns(pl.Series(_RECENT, lists, dtype=pl.List(pl.Int64)))
    return frame


def _intercept(signal: np.ndarray, rate: float) -> float:
    lo, hi = -20.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(np.mean(1.0 / (1.0 + np.exp(-(mid + signal))))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def write_splits(layout: Layout, rows: pl.DataFrame) -> dict[str, Path]:
    """Write ``rows`` split by their ``split`` column to ``training/{split}.parquet``."""
    out = {}
    for name in ("train", "validation", "test"):
        path = layout.split(name)
        write_parquet(rows.filter(pl.col(SPLIT) == name), path)
        out[name] = path
    return out


def write_undersampled(
    layout: Layout,
    *,
    strategy: str,
    negative_rate: dict[str, float],
    seed: int = 0,
    parts: int = 2,
) -> Path:
    """Keep each negative with its bucket's rate and write a resampled train plus report.

    A stand-in for the resampling stage in tests: it writes
    ``resampled/<strategy>/train/part-*.parquet`` and a real
    :class:`~longtail.resampling.SamplingReport` (``sampling_report.json``) whose
    offsets are ``log(1 / kept share of the bucket's negatives)``, about ``-log(rate)``.
    """
    train = pl.read_parquet(layout.split("train"))
    rng = np.random.default_rng(seed)
    rate = train[POPULARITY_BUCKET].replace_strict(negative_rate, return_dtype=pl.Float64)
    keep = (train[LABEL] == 1).to_numpy() | (rng.random(train.height) < rate.to_numpy())
    kept = train.filter(pl.Series(keep))
    folder = layout.resampled_strategy(strategy)
    for k in range(parts):
        write_parquet(
            kept.gather_every(parts, offset=k),
            layout.resampled_train(strategy) / f"part-{k:03d}.parquet",
        )
    strata = {}
    for bucket in negative_rate:
        counts = [
            frame.filter(pl.col(POPULARITY_BUCKET) == bucket)[LABEL].value_counts()
            for frame in (train, kept)
        ]
        before, after = ({int(c): int(n) for c, n in vc.iter_rows()} for vc in counts)
        strata[bucket] = ClassCounts(before=before, after=after)
    report = SamplingReport.build(
        strategy=strategy,
        stratum="label_bucket",
        params={"negative_rate": dict(negative_rate)},
        seed=seed,
        strata=strata,
        correction_by=POPULARITY_BUCKET,
    )
    report.to_json(layout.sampling_report(strategy))
    return folder
