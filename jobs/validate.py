"""Validate the data of a run with Great Expectations and report how imbalanced it is.

    python jobs/validate.py --config jobs/configs/demo.toml [--data-dir DIR] [--date D]
                            [--stage canonical|features|training|all]

Exit status: 0 when every critical expectation passed (warnings are printed),
1 when the gate failed (each failure printed as suite, expectation, column,
observed value and bound), 2 for usage or configuration errors. Reports go to
DATA_DIR/reports/ (Data Docs, validation/date=D/STAGE/{summary.json,report.html},
validation_history.jsonl).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from longtail.cli import base_parser, load_from_args, parse_date, run_main
from longtail.locking import data_dir_lock
from longtail.storage import announce_local_stage


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--date", type=parse_date, help="run date (default: last day of data)")
    parser.add_argument(
        "--stage",
        choices=("canonical", "features", "training", "all"),
        default="all",
        help="which tables to validate (default: all that exist)",
    )
    args = parser.parse_args(argv)
    cfg = load_from_args(args)
    announce_local_stage(cfg, stage="validate")
    # Great Expectations takes seconds to import: only once the config is known good.
    from longtail.validation import format_result, run_gate

    # GE logs its context set-up at INFO; keep the job's output to the verdict.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    with data_dir_lock(cfg.data_dir, job="validate"):
        result = run_gate(cfg, date=args.date, stage=args.stage)
    print(format_result(result))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
