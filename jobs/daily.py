"""Run the whole chain for a date (default: the last day of the data) or a range of dates.

    python jobs/daily.py --config jobs/configs/demo.toml [--data-dir DIR]
                         [--date D | --start D1 --end D2] [--force] [--verbose]

Idempotent: a rerun redoes nothing whose inputs are unchanged. Runs locally,
or on a cluster as `ray job submit --working-dir . -- python jobs/daily.py ...`.
The terminal shows one line per step and progress on long ones; Feast, Ray and
library output goes to DATA_DIR/runs/date=D/run.log (--verbose shows it too).

With [storage] uri (or --data-dir s3://BUCKET/PREFIX) a push step commits features
and training to the object store after the gates, and resample, train and score run
on the store (the driver-side steps write the local working copy), the backtest's
rebuilt chain included.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from longtail.cli import base_parser, load_from_args, parse_date, run_main
from longtail.daily import run_daily
from longtail.daily.report import closing_screen
from longtail.paths import Layout
from longtail.ray_runtime import shutdown_ray
from longtail.runlog import RunLog


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--date", type=parse_date, help="run date (default: last day of data)")
    when.add_argument("--start", type=parse_date, help="first date of a backfill range")
    parser.add_argument("--end", type=parse_date, help="last date of a backfill range")
    parser.add_argument("--force", action="store_true", help="rerun every step")
    parser.add_argument(
        "--verbose", action="store_true", help="also show Feast, Ray and library output"
    )
    args = parser.parse_args(argv)
    if (args.start is None) != (args.end is None):
        parser.error("--start and --end go together")
    cfg = load_from_args(args)
    layout = Layout(cfg.data_dir)
    with RunLog(verbose=args.verbose, default=layout.run_log) as run_log:
        result = run_daily(
            cfg, date=args.date, start=args.start, end=args.end, force=args.force, run_log=run_log
        )
        shutdown_ray()  # Ray's last worker lines (de-duplicated summaries) go to the log too
    for day in result.dates:
        print(closing_screen(layout, day, result.records[day]))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
