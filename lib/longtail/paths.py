"""Where every stage reads and writes under ``DATA_DIR``: one place, so no job guesses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """Paths under one data directory."""

    root: Path

    @property
    def canonical(self) -> Path:
        """Canonical tables (events, items, categories) as Parquet."""
        return self.root / "canonical"

    @property
    def quarantine(self) -> Path:
        """Rejected input rows, with reasons."""
        return self.root / "quarantine"

    @property
    def reports(self) -> Path:
        """JSON summaries and HTML reports."""
        return self.root / "reports"

    @property
    def features(self) -> Path:
        """Feature snapshots (Feast Parquet sources)."""
        return self.root / "features"

    @property
    def training(self) -> Path:
        """Labelled training splits."""
        return self.root / "training"

    @property
    def resampled(self) -> Path:
        """Resampled training split and its sampling report."""
        return self.root / "resampled"

    @property
    def models(self) -> Path:
        """Saved models, one folder per version."""
        return self.root / "models"

    @property
    def tune(self) -> Path:
        """Ray Tune runs and leaderboards."""
        return self.root / "tune"

    @property
    def runs(self) -> Path:
        """Daily run manifests and the lock."""
        return self.root / "runs"

    @property
    def feast(self) -> Path:
        """Feast registry and the SQLite online store."""
        return self.root / "feast"

    @property
    def staging(self) -> Path:
        """Temporary folders of partitions being written, outside every dataset folder."""
        return self.root / ".staging"

    def table(self, name: str) -> Path:
        """Path of a canonical table's Parquet file."""
        return self.canonical / f"{name}.parquet"

    def backtest(self, date: dt.date) -> Path:
        """The backtest of one date: its metrics, report and lists (and its chain in ``work/``)."""
        return self.root / "backtest" / f"date={date.isoformat()}"

    def recommendations(self, date: dt.date) -> Path:
        """The partition of recommendations for one date."""
        return self.root / "recommendations" / f"date={date.isoformat()}"

    def scoring_report(self, date: dt.date) -> Path:
        """The folder of one date's scoring report, beside (not in) the Parquet dataset."""
        return self.reports / "scoring" / f"date={date.isoformat()}"
