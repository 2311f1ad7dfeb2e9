"""Train the conversion model with Ray Train, calibrate it, save it and print its metrics.

python jobs/train.py --config jobs/configs/demo.toml [--data-dir DIR] [--strategy NAME]
python jobs/train.py --smoke-test      # tiny synthetic splits in a temp folder, 1 epoch

With [storage] uri (or --data-dir s3://BUCKET/PREFIX) the splits are read from the
object store, Ray Train checkpoints there, and the model is uploaded there.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from longtail.cli import base_parser, load_from_args, run_main
from longtail.locking import data_dir_lock
from longtail.paths import Layout
from longtail.storage import store_of
from longtail.synthetic import make_training_rows, write_splits
from longtail.train import TrainResult, fit


def print_result(result: TrainResult) -> None:
    with pl.Config(tbl_rows=20, tbl_cols=20, tbl_width_chars=160, float_precision=4):
        print(f"model {result.version} saved at {result.location}")
        print(f"resources: {result.resources}; restarts: {result.restarts}")
        print("probability metrics (calibrated; ece_uncalibrated before calibration):")
        print(result.metrics)
        print("ranking metrics (per user, top-K):")
        print(result.ranking)


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--strategy", default=None, help="resampled train to use (default: config)")
    parser.add_argument("--version", default=None, help="model folder name (default: timestamp)")
    parser.add_argument(
        "--smoke-test", action="store_true", help="tiny synthetic splits in a temp dir, 1 epoch"
    )
    args = parser.parse_args(argv)
    cfg = load_from_args(args)
    if args.smoke_test:
        tiny = {"epochs": 1, "hash_buckets_user": 1_000, "hash_buckets_item": 1_000}
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update=tiny)})
        with tempfile.TemporaryDirectory(prefix="longtail-train-smoke-") as tmp:
            layout = Layout(Path(tmp))
            write_splits(layout, make_training_rows(n_rows=5_000, seed=cfg.seed))
            print_result(fit(layout, cfg, strategy="none", version=args.version))
        return 0
    store = store_of(cfg)
    if store is not None:
        # The object store has no lock: one writer per prefix (the daily schedule's).
        result = fit(store, cfg, strategy=args.strategy, version=args.version)
    else:
        with data_dir_lock(cfg.data_dir, job="train"):
            result = fit(Layout(cfg.data_dir), cfg, strategy=args.strategy, version=args.version)
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
