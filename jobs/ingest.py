"""Ingest the configured source into canonical tables, quarantining every rejected row.

python jobs/ingest.py --config jobs/configs/demo.toml [--data-dir DIR]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from longtail.cli import base_parser, load_from_args, run_main
from longtail.ingest import run_ingest
from longtail.locking import data_dir_lock
from longtail.paths import Layout
from longtail.storage import announce_local_stage


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    args = parser.parse_args(argv)
    cfg = load_from_args(args)
    announce_local_stage(cfg, stage="ingest")
    with data_dir_lock(cfg.data_dir, job="ingest"):
        summary = run_ingest(cfg)
    print(json.dumps(summary.to_dict(), indent=2))
    layout = Layout(cfg.data_dir)
    print(f"canonical tables: {layout.canonical}\nquarantine: {layout.quarantine}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
