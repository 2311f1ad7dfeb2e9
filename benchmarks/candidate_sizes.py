"""Candidate recall at the backtest cutoff for a grid of candidate sizes (the ranker's ceiling).

    PYTHONPATH=lib .venv/bin/python benchmarks/candidate_sizes.py --config jobs/configs/demo.toml \
        [--data-dir DIR] [--date D] [--holdout-days 3]

Reads the canonical tables of DATA_DIR (run the daily job or the ingest first), takes
the backtest's cutoff, truth and users, and prints, per (history, max_candidates,
tail share), the share of truth pairs among the candidates and per source, and the
candidate pairs per user. No model is trained: this is what any ranker could reach.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

from longtail import schema as S
from longtail.backtest import backtest_cutoff, holdout_truth
from longtail.backtest.evaluate import candidate_recall
from longtail.candidates import candidate_config, generate_candidates
from longtail.config import load_config
from longtail.ingest import load_tables
from longtail.paths import Layout
from longtail.scoring.pipeline import expected_users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--holdout-days", type=int, default=None)
    parser.add_argument("--history", default="0,20,50,100")
    parser.add_argument("--max-candidates", default="100,200,400")
    parser.add_argument("--tail-share", default="0.1")
    args = parser.parse_args()
    cfg = load_config(args.config, data_dir=args.data_dir)
    canonical = load_tables(Layout(cfg.data_dir))
    events, items = canonical.events, canonical.items
    last = events[S.EVENT_TIME].max()
    assert isinstance(last, dt.datetime)
    day = args.date or last.date()
    cutoff = backtest_cutoff(day, holdout_days=args.holdout_days or cfg.backtest.holdout_days)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    served = expected_users(events, cfg, as_of=cutoff)
    truth = holdout_truth(
        events, cutoff=cutoff, end=end, target_event=cfg.labels.target_event,
        exclude_purchased=cfg.score.exclude_purchased,
    ).join(pl.DataFrame({S.USER_ID: served}), on=S.USER_ID, how="semi")  # fmt: skip
    print(f"cutoff {cutoff.isoformat()}: {truth[S.USER_ID].n_unique()} users, "
          f"{truth.height} truth pairs")  # fmt: skip
    head = f"{'history':>8} {'max_cand':>8} {'tail':>5} {'pairs/user':>10} {'recall':>7}  by source"
    print(head)
    base = candidate_config(cfg.score)
    grid = itertools.product(
        [int(x) for x in args.history.split(",")],
        [int(x) for x in args.max_candidates.split(",")],
        [float(x) for x in args.tail_share.split(",")],
    )
    for history, max_c, tail in grid:
        t = time.perf_counter()
        cc = replace(base, history=history, max_candidates=max_c, tail_share=tail)
        cands, _ = generate_candidates(
            events, items, served, as_of=cutoff, cfg=cc, seed=cfg.seed,
            head_share=cfg.features.head_share, torso_share=cfg.features.torso_share,
        )  # fmt: skip
        rec = candidate_recall(truth, cands)
        by = " ".join(f"{k}={v:.3f}" for k, v in rec.items() if k != "all")
        print(f"{history:>8} {max_c:>8} {tail:>5.2f} {cands.height / served.len():>10.1f} "
              f"{rec['all']:>7.3f}  {by}  ({time.perf_counter() - t:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
