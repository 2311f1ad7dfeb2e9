"""What an adapter returns: canonical tables, rejected rows and the accounting."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from longtail.ingest.quarantine import TableAccount
from longtail.tables import CanonicalTables

__all__ = ["CanonicalTables", "IngestResult"]


@dataclass
class IngestResult:
    """Canonical tables plus every rejected row and the per-table counts."""

    events: pl.DataFrame
    items: pl.DataFrame
    categories: pl.DataFrame
    quarantine: pl.DataFrame
    accounts: list[TableAccount]
    id_map: pl.DataFrame | None = field(default=None)
