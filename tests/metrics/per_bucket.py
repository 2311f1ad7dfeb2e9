"""A metric within each popularity bucket: a test helper (the library reports buckets itself)."""

from __future__ import annotations

import polars as pl

from longtail.metrics._checks import require
from longtail.metrics.classification import Metric
from longtail.schema import BUCKETS, LABEL, POPULARITY_BUCKET


def per_bucket(
    frame: pl.DataFrame,
    metric: Metric,
    *,
    label: str = LABEL,
    score: str = "probability",
    bucket: str = POPULARITY_BUCKET,
) -> pl.DataFrame:
    """Apply ``metric`` within each popularity bucket.

    Returns
    -------
    pl.DataFrame
        ``bucket``, ``rows``, ``positives``, ``value``; head/torso/tail first, in
        that order, then any other bucket value.
    """
    require(frame, numeric=(label, score), other=(bucket,))
    present = frame[bucket].drop_nulls().unique().to_list()
    order = [b for b in BUCKETS if b in present] + sorted(b for b in present if b not in BUCKETS)
    rows = []
    for name in order:
        part = frame.filter(pl.col(bucket) == name)
        rows.append(
            {
                "bucket": name,
                "rows": part.height,
                "positives": int(part[label].cast(pl.Int64).sum()),
                "value": metric(part, label=label, score=score),
            }
        )
    schema = {"bucket": pl.String, "rows": pl.Int64, "positives": pl.Int64, "value": pl.Float64}
    return pl.DataFrame(rows, schema=schema)
