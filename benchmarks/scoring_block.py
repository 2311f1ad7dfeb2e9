"""One scoring block of a real run, in this process: the call with and without kept slices.

Reads a data dir left by ``benchmarks/daily_scale.py --keep`` (or any daily run): its
canonical events, feature snapshots and current model. Builds the candidates of
``--users`` sampled served users as scoring does (one block, about 200 pairs a user),
then times :class:`longtail.scoring.pipeline.BatchScorer` on it (one torch thread, as
an actor with one CPU): once with every feature source read afresh, then ``--reps``
times with the sources' time slices kept (``keep_source_slices``; the first of those
reads the slices). Each kept call's output is compared with the fresh one.

python benchmarks/scoring_block.py --config /tmp/ds10/10M/config.toml
       --data-dir /tmp/ds10/10M/data [--date 2024-02-14] [--users 1300] [--reps 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2024, 2, 14))
    p.add_argument("--users", type=int, default=1300, help="sampled users in the block")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()

    import polars as pl
    import torch

    from longtail.candidates import CandidatePlan, candidate_config
    from longtail.config import load_config
    from longtail.ingest import load_tables
    from longtail.paths import CURRENT_MODEL, Layout
    from longtail.scoring.pipeline import BatchScorer, expected_users, for_actors, scoring_time
    from longtail.store.offline import forget_source_slices, keep_source_slices

    torch.set_num_threads(1)
    cfg = load_config(args.config, data_dir=args.data_dir)
    layout = Layout(cfg.data_dir)
    as_of = scoring_time(args.date)
    tables = load_tables(layout)
    users = expected_users(tables.events, cfg, as_of=as_of)
    plan = CandidatePlan(
        tables.events, tables.items, users.sample(min(args.users, users.len()), seed=1).sort(),
        as_of=as_of, seed=cfg.seed, cfg=candidate_config(cfg.score),
        head_share=cfg.features.head_share, torso_share=cfg.features.torso_share,
        users_per_chunk=max(args.users, 1),
    )  # fmt: skip
    block = for_actors(pl.concat(list(plan))).to_arrow()
    del tables, plan
    current = json.loads((layout.models / CURRENT_MODEL).read_text())["path"]
    scorer = BatchScorer(
        config_json=cfg.model_dump_json(),
        model_path=str(layout.models / current),
        as_of=as_of.isoformat(),
    )
    print(f"block: {block.num_rows:,} pairs of {args.users} users; load {os.getloadavg()[0]:.2f}")
    print("| call | seconds | pairs/s | equal to the fresh read |")
    print("|---|---:|---:|---|")
    forget_source_slices()  # the scorer switched them on
    t = time.perf_counter()
    fresh = scorer(block)
    took = time.perf_counter() - t
    print(f"| sources read afresh | {took:.2f} | {block.num_rows / took:,.0f} | - |")
    keep_source_slices()
    for rep in range(args.reps):
        t = time.perf_counter()
        got = scorer(block)
        took = time.perf_counter() - t
        what = "kept slices, reading them" if rep == 0 else "kept slices"
        print(f"| {what} | {took:.2f} | {block.num_rows / took:,.0f} | {got.equals(fresh)} |")


if __name__ == "__main__":
    main()
