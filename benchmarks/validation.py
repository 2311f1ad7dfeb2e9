"""Cost of the validation gate: a 1M-row events frame and a 1M-row training split.

PYTHONPATH=lib .venv/bin/python benchmarks/validation.py [--rows 1000000]

Times, separately: the Polars -> pandas hand-over, the GE suite (all expectations),
the imbalance metrics (Gini, Lorenz, label rates) and the whole gate on disk
(run_gate, Data Docs and report included). Reference point: generating and
ingesting the same events (the generator benchmark), i.e. the pipeline's first stage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from longtail import schema as S
from longtail.config import SyntheticSource, ValidationConfig, config_from_dict
from longtail.ingest import generate
from longtail.paths import Layout
from longtail.validation import run_gate
from longtail.validation import suites as V
from longtail.validation.engine import to_pandas, validate_frames
from longtail.validation.report import imbalance_summary


def training_split(n: int, *, end: dt.datetime, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    seconds = rng.integers(0, 30 * 86_400, n)
    times = pl.Series(S.EVENT_TIME, seconds).cast(pl.Duration("us")) * 1_000_000
    return pl.DataFrame(
        {
            S.USER_ID: rng.integers(0, 200_000, n),
            S.ITEM_ID: np.arange(n),
        }
    ).with_columns(
        (pl.lit(end).cast(S.TIME) - times).alias(S.EVENT_TIME),
        pl.Series(S.LABEL, (rng.random(n) < 0.02).astype(np.int8)),
        pl.lit("train").alias(S.SPLIT),
        pl.Series(S.POPULARITY_BUCKET, np.array(S.BUCKETS)[rng.integers(0, 3, n)]),
        pl.Series(S.ITEM_CATEGORY, rng.integers(0, 400, n)),
        *[pl.Series(f"user_views_{w}d", rng.poisson(w, n).astype(np.float64)) for w in (1, 7, 30)],
        pl.Series("user_conversion_rate", rng.random(n) * 0.1),
        pl.Series("item_price", rng.random(n) * 100),
        pl.Series("item_views_30d", rng.poisson(50, n).astype(np.float64)),
    )


def timed(fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    a = p.parse_args()
    t_gen, tables = timed(
        lambda: generate(
            SyntheticSource(n_users=60_000, n_items=50_000, days=30, n_leaf_categories=400),
            seed=1,
        )
    )
    events = tables.events.head(a.rows)
    t_gen *= a.rows / tables.events.height
    last = events[S.EVENT_TIME].max()
    assert isinstance(last, dt.datetime)
    split = training_split(a.rows, end=last)
    cfg = ValidationConfig()
    bounds = V.RunBounds.for_date(last.date(), window_days=365, now=dt.datetime.now(dt.UTC))
    rows = []
    for name, frame, suite in (
        ("events", events, V.events_suite(events.schema, bounds=bounds, cfg=cfg)),
        ("training_train", split, V.training_suite("train", split.schema, bounds=bounds, cfg=cfg)),
    ):
        t_pd, _ = timed(lambda f=frame: to_pandas(f))
        t_ge, _ = timed(lambda s=suite, f=frame: validate_frames([(s, f)]))
        rows.append((name, frame.height, len(suite.expectations), t_pd, t_ge))
    t_imb, _ = timed(
        lambda: imbalance_summary(
            events=events, items=tables.items, training={"train": split}, target_event="purchase",
            top_categories=10, head_share=0.5, torso_share=0.8,
        )
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "canonical").mkdir()
        (data / "training").mkdir()
        events.write_parquet(Layout(data).table("events"))
        tables.items.write_parquet(Layout(data).table("items"))
        split.write_parquet(Layout(data).split("train"))
        full = config_from_dict({"data_dir": str(data)})
        t_gate, result = timed(lambda: run_gate(full, date=last.date()))
    print(f"{'table':<16}{'rows':>10}{'expectations':>14}{'to pandas s':>13}{'GE suite s':>12}")
    for name, n, k, t_pd, t_ge in rows:
        print(f"{name:<16}{n:>10,}{k:>14}{t_pd:>13.2f}{t_ge:>12.2f}")
    print(f"imbalance metrics (events + train): {t_imb:.2f}s")
    print(f"run_gate on disk (2M rows, docs + report): {t_gate:.2f}s, passed={result.passed}")
    print(f"reference: generating {a.rows:,} synthetic events takes ~{t_gen:.2f}s")


if __name__ == "__main__":
    main()
