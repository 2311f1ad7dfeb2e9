"""Backtest the served lists: rebuild the chain H days back and compare with what users did.

    python jobs/backtest.py --config jobs/configs/demo.toml [--data-dir DIR]
                            [--date D] [--holdout-days H]

The cutoff is C = (D + 1 day - H days) 00:00 UTC (D: the last day of data by
default; H: [backtest] holdout_days, 3). Everything is rebuilt from events before
C in DATA_DIR/backtest/date=D/work/; the live outputs are never touched. Writes
DATA_DIR/backtest/date=D/metrics.json and report.html. With [storage] uri the
rebuilt chain's resample, train and score run on the object store (under
backtest/date=D/work/ there) and the outputs are committed to the store too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from longtail.backtest import run_backtest
from longtail.cli import base_parser, load_from_args, parse_date, run_main
from longtail.locking import data_dir_lock


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument(
        "--date", type=parse_date, help="last day of the holdout (default: last day of data)"
    )
    parser.add_argument(
        "--holdout-days",
        type=int,
        default=None,
        help="days held out (default: [backtest] holdout_days)",
    )
    args = parser.parse_args(argv)
    if args.holdout_days is not None and args.holdout_days < 1:
        parser.error("--holdout-days must be >= 1")
    cfg = load_from_args(args)
    with data_dir_lock(cfg.data_dir, job="backtest"):
        result = run_backtest(cfg, date=args.date, holdout_days=args.holdout_days)
    m = result.metrics
    k = m.k
    print(
        f"backtest {m.date}: cutoff {m.cutoff}, {m.users_evaluated} users, "
        f"{m.target_pairs} target pairs, K={k}"
    )
    names = (
        "recall_at_k",
        "ndcg_at_k",
        "hit_rate_at_k",
        "tail_recall_at_k",
        "catalog_coverage",
        "aplt",
    )
    print(f"{'system':<18}" + "".join(f"{n.replace('_at_k', f'@{k}'):>18}" for n in names))
    for system, values in m.systems.items():
        print(f"{system:<18}" + "".join(f"{values[n]:>18.4f}" for n in names))
    print(f"candidate recall: {m.candidate_recall}")
    print(m.verdict)
    print(f"report: {result.report}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
