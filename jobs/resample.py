"""Resample the train split with an imbalance strategy, per group on Ray Data.

    python jobs/resample.py --config jobs/configs/demo.toml [--data-dir DIR]
                            [--strategy NAME] [--smoke-test]

Reads DATA_DIR/training/train.parquet; writes DATA_DIR/resampled/<strategy>/train/
and DATA_DIR/resampled/<strategy>/sampling_report.json. Runs locally (starting a
local Ray when none is running) or as `ray job submit -- python jobs/resample.py ...`.
With [storage] uri (or --data-dir s3://BUCKET/PREFIX) the same keys are read and
written in the object store only (push the split first: jobs/sync.py --push training).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from longtail.cli import base_parser, load_from_args, run_main
from longtail.io import write_parquet
from longtail.locking import data_dir_lock
from longtail.paths import Layout
from longtail.ray_runtime import ensure_ray
from longtail.resampling import STRATEGIES, check_params, resample_train_split, train_split_path
from longtail.storage import store_of
from longtail.synthetic import make_train_frame


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--strategy", choices=sorted(STRATEGIES), help="overrides the config")
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="resample a tiny synthetic train split in a temporary data dir",
    )
    args = parser.parse_args(argv)
    cfg = load_from_args(args)
    section = cfg.resampling
    if args.strategy is not None:
        section = section.model_copy(update={"strategy": args.strategy})
    check_params(section.strategy, section.params)

    ensure_ray(num_cpus=2 if args.smoke_test else None)

    if args.smoke_test:
        with tempfile.TemporaryDirectory(prefix="longtail-resample-") as tmp:
            layout = Layout(Path(tmp))
            write_parquet(make_train_frame(2_000, seed=cfg.seed), train_split_path(layout))
            report = resample_train_split(layout, section, seed=cfg.seed)
    elif (store := store_of(cfg)) is not None:
        # The object store has no lock: one writer per prefix (the daily schedule's).
        report = resample_train_split(store, section, seed=cfg.seed)
    else:
        with data_dir_lock(cfg.data_dir, job="resample"):
            report = resample_train_split(Layout(cfg.data_dir), section, seed=cfg.seed)
    print(json.dumps(report.to_dict()["overall"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
