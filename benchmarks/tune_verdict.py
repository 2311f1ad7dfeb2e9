"""Check the checker: how often the tune verdict cries wolf, and how often it sees a real gain.

Run by hand (not a timed test)::

    PYTHONPATH=lib .venv/bin/python benchmarks/tune_verdict.py --reps 10 --seeds 2

Each repetition trains, in process and with the tune job's own trial code
(:func:`longtail.tune.trial.train_trial`), the baseline (no resampling, plain
BCE) under ``2 x seeds`` fresh seeds and a *planted* configuration under
``seeds`` more: the same rows with one informative feature more
(``user_planted`` = ``planted * label + N(0, 1)``, present in every split). The
verdict code of the leaderboard (:func:`longtail.tune.leaderboard.compare_groups`:
seed-averaged, user-clustered paired bootstrap plus the spread between seeds)
then judges

- A/A: baseline seeds A against baseline seeds B; "beyond noise" here is a false alarm;
- planted: the planted configuration (seeds B) against baseline seeds A; "beyond
  noise" with a positive difference is a detection.

Repetitions use disjoint seeds, so they are independent. The table prints each
repetition and the false-alarm rate and power with Clopper-Pearson 95% intervals.
Splits: synthetic rows (``--rows``), or ``--data-dir`` holding
``training/{train,validation,test}.parquet`` (e.g. the demo's).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import torch

from longtail.config import Config, config_from_dict, load_config
from longtail.paths import Layout
from longtail.schema import LABEL
from longtail.synthetic import make_training_rows, write_splits
from longtail.tune.leaderboard import TrialOutcome, ValueCache, compare_groups, read_trials
from longtail.tune.objective import objective_label
from longtail.tune.trial import TrialSetup, train_trial

_BASE = {"strategy": "none", "loss": "bce"}


def _config(path: Path | None, *, epochs: int, rounds: int) -> Config:
    small = {
        "epochs": epochs,
        "batch_size": 256,
        "hash_buckets_user": 1_000,
        "hash_buckets_item": 1_000,
    }
    if path is None:
        return config_from_dict({"seed": 11, "train": small, "tune": {"bootstrap_samples": rounds}})
    cfg = load_config(path)
    return cfg.model_copy(
        update={
            "train": cfg.train.model_copy(update={"epochs": epochs}),
            "tune": cfg.tune.model_copy(update={"bootstrap_samples": rounds}),
        }
    )


def _splits(args: argparse.Namespace) -> pl.DataFrame:
    if args.data_dir is None:
        return make_training_rows(n_rows=args.rows, seed=args.data_seed)
    layout = Layout(args.data_dir)
    return pl.concat(
        [pl.read_parquet(layout.split(s)) for s in ("train", "validation", "test")],
        how="diagonal_relaxed",
    )


def _setup(root: Path, name: str, rows: pl.DataFrame, cfg: Config, epochs: int) -> TrialSetup:
    layout = Layout(root / name)
    write_splits(layout, rows)
    return TrialSetup(
        cfg=cfg,
        run_id=name,
        run_dir=layout.tune / name,
        train=layout.split("train"),
        validation=layout.split("validation"),
        test=layout.split("test"),
        epochs=epochs,
    )


def _train(setup: TrialSetup, cfg: Config, seeds: Sequence[int], tag: str) -> list[TrialOutcome]:
    ids = []
    for seed in seeds:
        trial_id = f"{tag}-{seed}"
        point = {
            **_BASE,
            "learning_rate": cfg.train.learning_rate,
            "embedding_dim": cfg.train.embedding_dim,
            "seed": seed,
        }
        train_trial(setup, point, trial_id=trial_id, report=lambda _m: None)
        ids.append(trial_id)
    return [o for o in read_trials(setup.run_dir) if o.trial_id in ids]


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return low, high


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10, help="independent repetitions")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per arm (tune.seeds)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1_000, help="bootstrap rounds")
    parser.add_argument("--rows", type=int, default=6_000, help="synthetic rows")
    parser.add_argument("--data-seed", type=int, default=2)
    parser.add_argument(
        "--first-rep", type=int, default=0, help="start here (later runs get fresh seeds)"
    )
    parser.add_argument("--planted", type=float, default=0.6, help="label weight of the feature")
    parser.add_argument("--config", type=Path, default=None, help="TOML for [train]/[tune]")
    parser.add_argument("--data-dir", type=Path, default=None, help="use these training splits")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = _config(args.config, epochs=args.epochs, rounds=args.rounds)
    rows = _splits(args)
    rng = np.random.default_rng(args.data_seed + 1)
    planted = rows.with_columns(
        (
            args.planted * pl.col(LABEL).cast(pl.Float64) + pl.Series(rng.normal(size=rows.height))
        ).alias("user_planted")
    )
    k = cfg.train.ranking_k
    metric = objective_label(cfg.tune.objective, k=k)
    load = os.getloadavg()
    print(f"# tune verdict check: {args.reps} reps x {args.seeds} seeds/arm, {args.epochs} epochs, "
          f"{args.rounds} rounds, objective test {metric}, {rows.height} rows "
          f"({'synthetic' if args.data_dir is None else args.data_dir}), planted {args.planted}; "
          f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
    print("| rep | A/A diff | A/A interval | false alarm | planted diff | planted interval "
          "| detected | seconds |")  # fmt: skip
    print("|---:|---:|---|:---:|---:|---|:---:|---:|")
    alarms = detections = 0
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="longtail-verdict-"))
    try:
        base_setup = _setup(root, "base", rows, cfg, args.epochs)
        plant_setup = _setup(root, "planted", planted, cfg, args.epochs)
        for rep in range(args.first_rep, args.first_rep + args.reps):
            t0 = time.perf_counter()
            first = cfg.seed + 1_000 * (rep + 1)
            seeds_a = [first + j for j in range(args.seeds)]
            seeds_b = [first + args.seeds + j for j in range(args.seeds)]
            arm_a = _train(base_setup, cfg, seeds_a, "a")
            arm_b = _train(base_setup, cfg, seeds_b, "b")
            arm_p = _train(plant_setup, cfg, seeds_b, "p")
            cache: ValueCache = {}  # arm A's bootstrap values serve both comparisons
            aa = compare_groups(arm_b, arm_a, cfg.tune, k=k, cache=cache)["objective"]
            pp = compare_groups(arm_p, arm_a, cfg.tune, k=k, cache=cache)["objective"]
            alarm, hit = aa.excludes(0.0), pp.low > 0
            alarms += alarm
            detections += hit
            print(f"| {rep} | {aa.estimate:+.4f} | [{aa.low:+.4f}, {aa.high:+.4f}] | "
                  f"{'yes' if alarm else 'no'} | {pp.estimate:+.4f} | "
                  f"[{pp.low:+.4f}, {pp.high:+.4f}] | {'yes' if hit else 'no'} | "
                  f"{time.perf_counter() - t0:.0f} |", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = args.reps
    fa_lo, fa_hi = _clopper_pearson(alarms, n)
    pw_lo, pw_hi = _clopper_pearson(detections, n)
    load = os.getloadavg()
    print(f"\nfalse-alarm rate {alarms}/{n} = {alarms / n:.0%} "
          f"(95% CI {fa_lo:.0%} to {fa_hi:.0%}); power {detections}/{n} = "
          f"{detections / n:.0%} (95% CI {pw_lo:.0%} to {pw_hi:.0%}); "
          f"{time.perf_counter() - started:.0f} s; load at end {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
