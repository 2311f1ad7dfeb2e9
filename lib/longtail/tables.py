"""The canonical tables as one value: what a source yields and what ingest writes."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["CanonicalTables"]


@dataclass(frozen=True)
class CanonicalTables:
    """The three canonical tables of a source (or of ``DATA_DIR/canonical/``)."""

    events: pl.DataFrame
    items: pl.DataFrame
    categories: pl.DataFrame
