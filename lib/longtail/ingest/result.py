"""What an adapter returns: canonical tables, rejected rows and the accounting."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from longtail.ingest.quarantine import TableAccount

__all__ = ["CanonicalTables", "IngestResult"]


@dataclass(frozen=True)
class CanonicalTables:
    """The three canonical tables of a source (or of ``DATA_DIR/canonical/``)."""

    events: pl.DataFrame
    items: pl.DataFrame
    categories: pl.DataFrame


@dataclass
class IngestResult:
    """Canonical tables plus every rejected row and the per-table counts."""

    events: pl.DataFrame
    items: pl.DataFrame
    categories: pl.DataFrame
    quarantine: pl.DataFrame
    accounts: list[TableAccount]
    id_map: pl.DataFrame | None = field(default=None)
