"""Score every expected user for a date and write calibrated top-K lists.

    python jobs/score.py --config jobs/configs/demo.toml [--data-dir DIR] [--date D]

Writes DATA_DIR/recommendations/date=D/ (Parquet and _manifest.json only), swapped
in whole, the scoring report to DATA_DIR/reports/scoring/date=D/, and pushes the
lists to the Feast online store.

With [storage] uri (or --data-dir s3://BUCKET/PREFIX) the Ray actors read the model
and the feature snapshots from the object store only (push them first:
jobs/sync.py --push features), the driver builds the candidates from its local
working copy, and the partition and report are committed to the store as well.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from longtail.cli import base_parser, load_from_args, parse_date, run_main
from longtail.daily import last_data_date
from longtail.locking import data_dir_lock
from longtail.paths import Layout, ScoringReport
from longtail.scoring.pipeline import run_scoring


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--date", type=parse_date, help="run date (default: last day of data)")
    args = parser.parse_args(argv)
    cfg = load_from_args(args)
    with data_dir_lock(cfg.data_dir, job="score"):
        date = args.date or last_data_date(Layout(cfg.data_dir))
        result = run_scoring(cfg, date=date)
    print(json.dumps(result.manifest, indent=2, default=str))
    print(f"recommendations: {result.path}")
    print(f"report: {ScoringReport(result.report).page}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
