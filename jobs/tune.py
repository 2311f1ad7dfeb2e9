"""Compare imbalance strategies and losses with Ray Tune: leaderboard, report, best config.

python jobs/tune.py --config jobs/configs/demo.toml [--data-dir DIR] [--run-id NAME]
python jobs/tune.py --config ... --run-id NAME --finish   # verdict from a stopped run's trials
python jobs/tune.py --smoke-test      # tiny synthetic splits in a temp folder, 3 short trials

With [storage] uri (or --data-dir s3://BUCKET/PREFIX) the trials read the splits from
the object store and upload their records and models there; the driver judges them in
its local working copy and commits the run folder and best.json to the store.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from longtail.cli import base_parser, load_from_args, run_main
from longtail.config import Config, StorageConfig
from longtail.locking import data_dir_lock
from longtail.paths import Layout, TuneRun
from longtail.ray_runtime import ensure_ray
from longtail.synthetic import make_training_rows, write_splits
from longtail.tune import TuneResult, run_tune
from longtail.tune.space import param_space

SHOWN = (
    "label",
    "seed",
    "status",
    "epochs_run",
    "objective",
    "heldout_ece",
    "test_pr_auc",
    "test_pr_auc_tail",
    "total_seconds",
)


def smoke_config(cfg: Config) -> Config:
    """The config shrunk to 3 short trials on tiny data (3 configurations, 1 seed, fixed)."""
    tiny_train = {
        "epochs": 2,
        "hash_buckets_user": 1_000,
        "hash_buckets_item": 1_000,
        "batch_size": 256,
    }
    tiny_tune = {
        "num_samples": 3,
        "seeds": 1,
        "hyperparameters": "fixed",
        "time_budget_s": 180.0,
        "bootstrap_samples": 50,
        "strategies": ["none", "random_under", "random_over", "smote"],
        "embedding_dims": [8, 16],
    }
    return cfg.model_copy(
        update={
            "train": cfg.train.model_copy(update=tiny_train),
            "tune": cfg.tune.model_validate({**cfg.tune.model_dump(), **tiny_tune}),
        }
    )


def print_result(result: TuneResult) -> None:
    with pl.Config(
        tbl_rows=30, tbl_cols=12, tbl_width_chars=180, float_precision=4, fmt_str_lengths=40
    ):
        print(f"tune run {result.run_id}: {result.run_dir}")
        print(result.leaderboard.select(SHOWN))
        print(
            result.comparison.configurations.select(
                "rank", "label", "seeds", "objective", "test_objective", "diff_vs_baseline",
                "diff_low", "diff_high", "beyond_noise",
            )
        )  # fmt: skip
    print(f"verdict: {result.comparison.verdict}")
    print(f"report: {TuneRun(result.run_dir).report}")
    if result.best is not None:
        best = result.best
        print(
            f"best: {best.strategy} / {best.loss} {best.loss_params} "
            f"lr={best.learning_rate:.2g} embedding_dim={best.embedding_dim}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--run-id", default=None, help="run folder under tune/ (default: time)")
    parser.add_argument(
        "--smoke-test", action="store_true", help="tiny synthetic splits in a temp dir, 3 trials"
    )
    parser.add_argument(
        "--finish",
        action="store_true",
        help="no search: write the verdict and report of --run-id from its trials on disk",
    )
    args = parser.parse_args(argv)
    if args.finish and not args.run_id:
        parser.error("--finish needs the --run-id of the run to finish")
    cfg = load_from_args(args)
    param_space(cfg)  # unknown strategies or parameters fail here, before Ray starts
    ensure_ray()
    if args.smoke_test:
        # Tiny local splits: never the object store a config may name.
        cfg = smoke_config(cfg).model_copy(update={"storage": StorageConfig()})
        with tempfile.TemporaryDirectory(prefix="longtail-tune-smoke-") as tmp:
            layout = Layout(Path(tmp))
            write_splits(layout, make_training_rows(n_rows=6_000, seed=cfg.seed))
            print_result(run_tune(layout, cfg, run_id=args.run_id))
        return 0
    with data_dir_lock(cfg.data_dir, job="tune"):
        print_result(run_tune(Layout(cfg.data_dir), cfg, run_id=args.run_id, finish=args.finish))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
