"""The ingest stage: a source -> canonical Parquet tables, quarantine and a summary."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from longtail import schema as S
from longtail.config import Config, GenericSource, RetailRocketSource, SyntheticSource
from longtail.errors import StageError
from longtail.ingest.events import RowLimits
from longtail.ingest.generic import ingest_generic
from longtail.ingest.quarantine import TableAccount
from longtail.ingest.result import CanonicalTables, IngestResult
from longtail.ingest.retailrocket import ingest_retailrocket
from longtail.io import atomic_dir, write_json
from longtail.paths import QUARANTINE_ROWS, Layout, table_file
from longtail.synthetic import generate

__all__ = [
    "IngestSummary",
    "last_event_date",
    "load_tables",
    "read_source",
    "row_limits",
    "run_ingest",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestSummary:
    """Counts of one ingest run (the content of ``reports/ingest_summary.json``)."""

    source: str
    tables: dict[str, dict[str, Any]]
    rows_read: int
    accepted: int
    deduplicated: int
    ignored: int
    quarantined: dict[str, int]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form: totals over all tables, then per table."""
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "deduplicated": self.deduplicated,
            "ignored": self.ignored,
            "quarantined": self.quarantined,
            "tables": self.tables,
            "seconds": round(self.seconds, 3),
        }


def _synthetic_result(cfg: Config, source: SyntheticSource) -> IngestResult:
    tables = generate(source, seed=cfg.seed)
    accounts = []
    for name, frame in (
        ("events", tables.events),
        ("items", tables.items),
        ("categories", tables.categories),
    ):
        accounts.append(TableAccount(name, rows_read=frame.height, accepted=frame.height))
    return IngestResult(
        events=tables.events,
        items=tables.items,
        categories=tables.categories,
        quarantine=S.empty(S.QUARANTINE),
        accounts=accounts,
    )


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def row_limits(cfg: Config) -> RowLimits:
    """The plausible times and prices, and the window, of ``[ingest]`` (naive = UTC)."""
    ing = cfg.ingest
    return RowLimits(
        earliest=_utc(ing.earliest_timestamp),
        window_start=None if ing.window_start is None else _utc(ing.window_start),
        window_end=None if ing.window_end is None else _utc(ing.window_end),
        max_price=ing.max_price,
    )


def read_source(cfg: Config, *, now: dt.datetime | None = None) -> IngestResult:
    """Run the configured source adapter in memory (no files written).

    Parameters
    ----------
    cfg
        The configuration; ``cfg.source`` picks the adapter.
    now
        Reference time of the future-timestamp rule; default ``cfg.ingest.now`` or the clock.
    """
    ref = now or cfg.ingest.now or dt.datetime.now(dt.UTC)
    if ref.tzinfo is None:
        ref = ref.replace(tzinfo=dt.UTC)
    tol = dt.timedelta(hours=cfg.ingest.future_tolerance_hours)
    limits = row_limits(cfg)
    src = cfg.source
    if isinstance(src, SyntheticSource):
        return _synthetic_result(cfg, src)
    if isinstance(src, RetailRocketSource):
        return ingest_retailrocket(src, now=ref, future_tolerance=tol, limits=limits)
    if isinstance(src, GenericSource):
        return ingest_generic(src, now=ref, future_tolerance=tol, limits=limits)
    raise AssertionError(f"unhandled source {src!r}")  # pragma: no cover - config forbids it


def run_ingest(cfg: Config, *, now: dt.datetime | None = None) -> IngestSummary:
    """Ingest the configured source into ``DATA_DIR/canonical`` and ``DATA_DIR/quarantine``.

    The canonical folder is written to a temporary place and swapped in whole, so
    the three tables always come from the same run. Rejected rows go to
    ``quarantine/quarantine.parquet`` with their original values and a reason.

    Returns
    -------
    IngestSummary
        The counts, also written to ``reports/ingest_summary.json``.
    """
    t0 = time.perf_counter()
    layout = Layout(cfg.data_dir)
    result = read_source(cfg, now=now)
    for acc in result.accounts:
        acc.check()
    with atomic_dir(layout.canonical) as tmp:
        result.events.write_parquet(tmp / table_file("events"))
        result.items.write_parquet(tmp / table_file("items"))
        result.categories.write_parquet(tmp / table_file("categories"))
        if result.id_map is not None:
            result.id_map.write_parquet(tmp / table_file("id_map"))
    with atomic_dir(layout.quarantine) as tmp:
        result.quarantine.sort("table", "source_file", "row_number").write_parquet(
            tmp / QUARANTINE_ROWS
        )
    quarantined: dict[str, int] = {}
    for acc in result.accounts:
        for reason, n in acc.quarantined.items():
            quarantined[reason] = quarantined.get(reason, 0) + n
    summary = IngestSummary(
        source=cfg.source.kind,
        tables={acc.table: acc.to_dict() for acc in result.accounts},
        rows_read=sum(a.rows_read for a in result.accounts),
        accepted=sum(a.accepted for a in result.accounts),
        deduplicated=sum(a.deduplicated for a in result.accounts),
        ignored=sum(a.ignored for a in result.accounts),
        quarantined=dict(sorted(quarantined.items())),
        seconds=time.perf_counter() - t0,
    )
    write_json(summary.to_dict(), layout.ingest_summary)
    log.info(
        "ingest %s: read %d, accepted %d, deduplicated %d, ignored %d, quarantined %d (%.1fs)",
        summary.source,
        summary.rows_read,
        summary.accepted,
        summary.deduplicated,
        summary.ignored,
        sum(quarantined.values()),
        summary.seconds,
    )
    return summary


def load_tables(layout: Layout) -> CanonicalTables:
    """Read the canonical events, items and categories written by :func:`run_ingest`."""
    missing = [n for n in ("events", "items", "categories") if not layout.table(n).is_file()]
    if missing:
        msg = f"no canonical table(s) {missing} under {layout.canonical}: run jobs/ingest.py first"
        raise StageError(msg)
    return CanonicalTables(
        events=pl.read_parquet(layout.table("events")),
        items=pl.read_parquet(layout.table("items")),
        categories=pl.read_parquet(layout.table("categories")),
    )


def last_event_date(layout: Layout) -> dt.date:
    """The date of the last canonical event (the default run date of the jobs).

    Raises
    ------
    StageError
        There are no canonical events yet.
    """
    path = layout.table("events")
    if not path.is_file():
        msg = f"no canonical events at {path}: run jobs/ingest.py first"
        raise StageError(msg)
    last = pl.scan_parquet(path).select(pl.col(S.EVENT_TIME).max()).collect().item()
    if not isinstance(last, dt.datetime):
        msg = f"{path} holds no events"
        raise StageError(msg)
    return last.date()
