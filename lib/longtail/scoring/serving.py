"""Push the lists to the Feast online store, so services read a user's items by user id."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from longtail import schema as S
from longtail.config import Config
from longtail.io import write_parquet
from longtail.paths import Layout

if TYPE_CHECKING:
    from feast import FeatureStore

__all__ = ["RECS_FEATURES", "online_lists", "push_lists", "read_latency"]

log = logging.getLogger(__name__)

RECS_FEATURES = [
    "user_recommendations:rec_items",
    "user_recommendations:rec_probabilities",
    "user_recommendations:rec_scores",
    "user_recommendations:rec_model_version",
    "user_recommendations:rec_date",
]


def online_lists(recs: pl.DataFrame, *, date: dt.date, as_of: dt.datetime) -> pl.DataFrame:
    """One row per user: the ranked item ids, probabilities and scores as lists."""
    return (
        recs.sort(S.USER_ID, S.RANK)
        .group_by(S.USER_ID, maintain_order=True)
        .agg(
            pl.col(S.ITEM_ID).alias("rec_items"),
            pl.col(S.PROBABILITY).alias("rec_probabilities"),
            pl.col(S.SCORE).alias("rec_scores"),
            pl.col("model_version").first().alias("rec_model_version"),
        )
        .with_columns(
            pl.lit(date.isoformat()).alias("rec_date"),
            pl.lit(as_of).dt.cast_time_unit("us").alias(S.SNAPSHOT_TIME),
        )
    )


def push_lists(
    store: FeatureStore, cfg: Config, recs: pl.DataFrame, *, date: dt.date, as_of: dt.datetime
) -> int:
    """Write the lists as the view's Parquet source and into the online store.

    A date older than the lists already served (a backfill, or a forced rerun of an
    earlier date) is not pushed: services keep reading the newest lists.

    Returns
    -------
    int
        Users pushed (0 when newer lists are already served).
    """
    from longtail.store import apply_definitions
    from longtail.store.definitions import RECS_SOURCE_PATH, RECS_VIEW

    source = Layout(cfg.data_dir).root / RECS_SOURCE_PATH
    if source.is_file():
        served = pl.read_parquet(source, columns=["rec_date"])["rec_date"].max()
        if served is not None and str(served) > date.isoformat():
            log.info("lists of %s not pushed: the online store serves those of %s", date, served)
            return 0
    apply_definitions(store, cfg)
    lists = online_lists(recs, date=date, as_of=as_of)
    write_parquet(lists, source)
    store.write_to_online_store(RECS_VIEW, lists.to_pandas())
    return lists.height


def read_latency(store: FeatureStore, users: list[int], *, repeats: int = 1) -> dict[str, Any]:
    """Time ``get_online_features`` for one user at a time; percentiles in milliseconds."""
    times = []
    for _ in range(repeats):
        for user in users:
            t0 = time.perf_counter()
            store.get_online_features(features=RECS_FEATURES, entity_rows=[{S.USER_ID: user}])
            times.append((time.perf_counter() - t0) * 1000)
    arr = np.asarray(times)
    return {
        "reads": int(arr.size),
        "p50_ms": float(np.percentile(arr, 50)),
        "p95_ms": float(np.percentile(arr, 95)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
    }
