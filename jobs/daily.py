"""Run the whole chain for a date (default: the last day of the data) or a range of dates.

    python jobs/daily.py --config jobs/configs/demo.toml [--data-dir DIR]
                         [--date D | --start D1 --end D2] [--force]

Idempotent: a rerun redoes nothing whose inputs are unchanged. Runs locally,
or on a cluster as `ray job submit --working-dir . -- python jobs/daily.py ...`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from longtail.cli import base_parser, load_from_args, parse_date, run_main
from longtail.daily import run_daily
from longtail.paths import Layout


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--date", type=parse_date, help="run date (default: last day of data)")
    when.add_argument("--start", type=parse_date, help="first date of a backfill range")
    parser.add_argument("--end", type=parse_date, help="last date of a backfill range")
    parser.add_argument("--force", action="store_true", help="rerun every step")
    args = parser.parse_args(argv)
    if (args.start is None) != (args.end is None):
        parser.error("--start and --end go together")
    cfg = load_from_args(args)
    result = run_daily(cfg, date=args.date, start=args.start, end=args.end, force=args.force)
    layout = Layout(cfg.data_dir)
    for day in result.dates:
        print(f"\n== {day}")
        for name, rec in result.records[day].items():
            print(f"  {name:<20} {rec.status:<13} {rec.seconds:7.1f}s  {rec.metrics}")
        print(f"  manifest: {result.manifests[day]}")
        print(f"  report:   {result.manifests[day].parent / 'report.html'}")
    print(f"\noutputs under {layout.root.resolve()}:")
    for sub in sorted(p for p in layout.root.iterdir() if p.is_dir() and p.name[0] != "."):
        print(f"  {sub.name}/")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
