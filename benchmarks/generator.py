"""Synthetic generator and ingest throughput: events/s and peak memory.

.venv/bin/python benchmarks/generator.py [--users 200000 --items 200000 --days 60]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import polars as pl

from longtail.config import SyntheticSource, config_from_dict
from longtail.ingest import generate, read_source


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--days", type=int, default=60)
    a = p.parse_args()
    src = SyntheticSource(
        n_users=a.users, n_items=a.items, days=a.days, sessions_per_user_day=0.2,
        n_leaf_categories=400, n_top_categories=8,
    )  # fmt: skip
    t0 = time.perf_counter()
    tables = generate(src, seed=1)
    gen_s = time.perf_counter() - t0
    n = tables.events.height
    with tempfile.TemporaryDirectory() as tmp:
        # The same events as a generic CSV, through the full parse + quarantine path.
        path = Path(tmp) / "events.csv"
        tables.events.with_columns(pl.col("event_time").dt.epoch("ms")).write_csv(path)
        cfg = config_from_dict(
            {
                "source": {
                    "kind": "generic", "events": str(path),
                    "columns": {"user_id": "user_id", "item_id": "item_id",
                                "event_type": "event_type", "event_time": "event_time",
                                "transaction_id": "transaction_id"},
                    "event_time": {"unit": "ms"},
                }
            }
        )  # fmt: skip
        t0 = time.perf_counter()
        result = read_source(cfg)
        ing_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| step | events | seconds | events/s |\n|---|---|---|---|")
    print(f"| generate | {n:,} | {gen_s:.1f} | {n / gen_s:,.0f} |")
    print(f"| ingest generic CSV | {result.events.height:,} | {ing_s:.1f} | {n / ing_s:,.0f} |")
    print(f"peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
