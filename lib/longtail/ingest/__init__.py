"""Ingest: sources (synthetic, RetailRocket, generic CSV/Parquet) -> canonical tables."""

from __future__ import annotations

from longtail.ingest.pipeline import (
    IngestSummary,
    last_event_date,
    load_tables,
    read_source,
    run_ingest,
)
from longtail.synthetic import CanonicalTables, generate

__all__ = [
    "CanonicalTables",
    "IngestSummary",
    "generate",
    "last_event_date",
    "load_tables",
    "read_source",
    "run_ingest",
]
