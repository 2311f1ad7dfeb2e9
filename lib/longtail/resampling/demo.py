"""A small synthetic train split with the real training set's shape and a planted signal.

Used by the tests, the job's ``--smoke-test`` and the benchmark; never by production.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from longtail.schema import (
    BUCKETS,
    EVENT_TIME,
    ITEM_CATEGORY,
    ITEM_ID,
    LABEL,
    POPULARITY_BUCKET,
    SPLIT,
    TIME,
    USER_ID,
)

__all__ = ["make_train_frame"]


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
    bucket = rng.choice(np.array(BUCKETS), size=n_rows, p=[0.5, 0.3, 0.2])
    n_items = max(10, n_rows // 20)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    columns: dict[str, pl.Series] = {
        USER_ID: pl.Series(USER_ID, rng.integers(0, max(5, n_rows // 10), n_rows), pl.Int64),
        ITEM_ID: pl.Series(ITEM_ID, rng.integers(0, n_items, n_rows), pl.Int64),
        EVENT_TIME: (
            pl.Series(EVENT_TIME, rng.permutation(n_rows).astype(np.int64) * 7_000_000)
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC")
            .dt.offset_by(f"{int(start.timestamp())}s")
            .cast(TIME)
        ),
        ITEM_CATEGORY: pl.Series(ITEM_CATEGORY, rng.integers(0, 12, n_rows), pl.Int64),
        POPULARITY_BUCKET: pl.Series(POPULARITY_BUCKET, bucket, pl.String),
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
    columns[LABEL] = pl.Series(LABEL, label, pl.Int64)
    columns[SPLIT] = pl.Series(SPLIT, [split] * n_rows, pl.String)
    return pl.DataFrame(list(columns.values()))
