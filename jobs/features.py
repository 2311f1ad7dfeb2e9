"""Build feature snapshots up to a date, apply the Feast repo, materialize, build the training set.

    python jobs/features.py --config jobs/configs/demo.toml [--data-dir DIR] [--date D]

D defaults to the day after the last event. Snapshots are computed from events
strictly before each snapshot day; reruns for the same D give the same files.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from longtail.cli import base_parser, load_from_args, parse_date, run_main
from longtail.features.pipeline import default_until, run_features
from longtail.locking import data_dir_lock
from longtail.storage import announce_local_stage


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument(
        "--date", type=parse_date, default=None, help="last snapshot date (default: all data)"
    )
    args = parser.parse_args(argv)
    cfg = load_from_args(args)
    announce_local_stage(cfg, stage="features")
    with data_dir_lock(cfg.data_dir, job="features"):
        until = args.date or default_until(cfg)
        run = run_features(cfg, until=until)
    print(f"features up to {until}: {run.user_rows:,} user rows, {run.item_rows:,} item rows")
    for line in run.training.lines():
        print(f"  {line}")
    for name, path in run.training.paths.items():
        print(f"  {name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
