"""A stand-in for the resampling stage in the train tests: undersampled negatives plus a report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

from longtail.io import write_json, write_parquet
from longtail.paths import Layout
from longtail.schema import LABEL, POPULARITY_BUCKET


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
    ``resampled/<strategy>/train/part-*.parquet`` and ``sampling_report.json`` with
    ``correction.log_odds_offset[bucket] = -log(rate)``.
    """
    train = pl.read_parquet(layout.training / "train.parquet")
    rng = np.random.default_rng(seed)
    rate = train[POPULARITY_BUCKET].replace_strict(negative_rate, return_dtype=pl.Float64)
    keep = (train[LABEL] == 1).to_numpy() | (rng.random(train.height) < rate.to_numpy())
    kept = train.filter(pl.Series(keep))
    folder = layout.resampled / strategy
    for k in range(parts):
        write_parquet(
            kept.gather_every(parts, offset=k), folder / "train" / f"part-{k:03d}.parquet"
        )
    report = {
        "strategy": strategy,
        "correction": {
            "by": POPULARITY_BUCKET,
            "log_odds_offset": {b: -math.log(r) for b, r in negative_rate.items()},
        },
        "rows_in": train.height,
        "rows_out": kept.height,
    }
    write_json(report, folder / "sampling_report.json")
    return folder
