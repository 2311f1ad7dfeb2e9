"""A stand-in for the resampling stage in the train tests: undersampled negatives plus a report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from longtail.io import write_parquet
from longtail.paths import Layout
from longtail.resampling import ClassCounts, SamplingReport
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
    report.write(layout.sampling_report(strategy))
    return folder
