"""The Great Expectations suites of a run, as GE JSON: for review and diffs, not for running.

    PYTHONPATH=lib python validations/suites.py --config jobs/configs/demo.toml \
        [--data-dir DIR] [--date D] [--out DIR]

The suites themselves are code in ``lib/longtail/validation/suites.py``: they are
built per run from the config (bounds, severities), the run date (window,
freshness), the previous run (row-count bounds) and the columns each table has
(feature tables grow), so a frozen JSON copy would be wrong the next day. The
package location keeps imports plain (``from longtail.validation import ...``) for
the daily job and the tests, with no ``sys.path`` edits; this file prints what a
run on the given data would check, one JSON file per suite.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from longtail import schema as S
from longtail.cli import base_parser, load_from_args, parse_date, run_main
from longtail.paths import Layout
from longtail.validation import suites as V
from longtail.validation.gate import FEATURE_TABLES


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--date", type=parse_date, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write one JSON per suite here")
    args = parser.parse_args(argv)
    cfg = load_from_args(args)
    layout = Layout(cfg.data_dir)
    date = args.date or dt.datetime.now(dt.UTC).date()
    bounds = V.RunBounds.for_date(
        date, window_days=cfg.validation.window_days, now=dt.datetime.now(dt.UTC)
    )
    suites = []
    tables = {"events": layout.table("events"), "items": layout.table("items")}
    for name, path in tables.items():
        schema = pl.read_parquet_schema(path) if path.is_file() else dict(getattr(S, name.upper()))
        build = V.events_suite if name == "events" else V.items_suite
        suites.append(build(schema, bounds=bounds, cfg=cfg.validation))
    for name, entity in FEATURE_TABLES.items():
        path = layout.features / f"{name}.parquet"
        if path.is_file():
            schema = pl.read_parquet_schema(path)
            suites.append(
                V.feature_suite(name, schema, entity=entity, bounds=bounds, cfg=cfg.validation)
            )
    for split in S.SPLITS:
        path = layout.training / f"{split}.parquet"
        if path.is_file():
            schema = pl.read_parquet_schema(path)
            suites.append(V.training_suite(split, schema, bounds=bounds, cfg=cfg.validation))
    metrics = {"events_label_rate": 0.0, "events_label_rate_drift": 0.0, "item_gini_drift": 0.0}
    suites.append(V.metrics_suite(metrics, cfg=cfg.validation))
    for suite in suites:
        text = json.dumps(suite.to_json_dict(), indent=2, sort_keys=True, default=str)
        if args.out is None:
            print(text)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{suite.name}.json").write_text(text + "\n", encoding="utf-8")
            print(args.out / f"{suite.name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
