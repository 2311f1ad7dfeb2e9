"""Build the snapshots from the canonical tables on disk and write the Feast sources."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from longtail.config import Config
from longtail.features.snapshots import FeatureTables, build_features
from longtail.io import write_parquet
from longtail.paths import Layout

__all__ = ["feature_paths", "write_features"]

log = logging.getLogger(__name__)


def feature_paths(layout: Layout) -> tuple[Path, Path]:
    """``(user, item)`` snapshot Parquet paths under ``DATA_DIR/features``."""
    return layout.feature_table("user_features"), layout.feature_table("item_features")


def write_features(cfg: Config, *, until: dt.date) -> FeatureTables:
    """Build snapshots up to ``until`` from ``DATA_DIR/canonical`` and write them atomically.

    Raises
    ------
    StageError
        The canonical tables are missing (run the ingest first).
    """
    from longtail.ingest import load_tables

    layout = Layout(cfg.data_dir)
    canonical = load_tables(layout)
    events, items = canonical.events, canonical.items
    tables = build_features(events, items, cfg.features, until=until)
    user_path, item_path = feature_paths(layout)
    write_parquet(tables.user, user_path)
    write_parquet(tables.item, item_path)
    log.info(
        "features up to %s: %d user rows, %d item rows",
        until,
        tables.user.height,
        tables.item.height,
    )
    return tables
