"""The steps of the daily chain and the driver over a date or a range of dates."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from longtail import schema as S
from longtail.config import Config, GenericSource, RetailRocketSource
from longtail.daily.report import write_run_report
from longtail.daily.runner import RunContext, Step, StepRecord, data_dir_lock, run_steps
from longtail.errors import StageError
from longtail.paths import Layout

__all__ = ["DailyResult", "build_steps", "last_data_date", "run_daily"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DailyResult:
    """Records of every step, per date."""

    dates: list[dt.date]
    records: dict[dt.date, dict[str, StepRecord]]
    manifests: dict[dt.date, Path]


def _source_files(ctx: RunContext) -> list[Path]:
    src = ctx.cfg.source
    if isinstance(src, RetailRocketSource):
        names = [src.events, *src.item_properties, src.category_tree]
        if src.item_category:
            names.append(src.item_category)
        return [src.path / n for n in names]
    if isinstance(src, GenericSource):
        return [src.events]
    return []  # synthetic: the config alone decides the data


def _ingest(ctx: RunContext) -> dict[str, Any]:
    from longtail.ingest import run_ingest

    summary = run_ingest(ctx.cfg)
    return {
        "rows_read": summary.rows_read,
        "accepted": summary.accepted,
        "quarantined": sum(summary.quarantined.values()),
    }


def build_steps(cfg: Config) -> list[Step]:
    """The chain, in order. Each stage adds its step here as it lands."""
    return [
        Step(
            name="ingest",
            run=_ingest,
            inputs=_source_files,
            outputs=lambda c: [c.layout.canonical, c.layout.reports / "ingest_summary.json"],
            config=("source", "ingest"),
            per_date=False,
        ),
    ]


def _load_records(manifest: Path) -> dict[str, StepRecord]:
    if not manifest.is_file():
        return {}
    steps = json.loads(manifest.read_text()).get("steps", {})
    return {name: StepRecord(**rec) for name, rec in steps.items()}


def last_data_date(layout: Layout) -> dt.date:
    """The date of the last canonical event (the default run date).

    Raises
    ------
    StageError
        There are no canonical events yet.
    """
    path = layout.table("events")
    if not path.is_file():
        msg = f"no canonical events at {path}: run the ingest step first"
        raise StageError(msg)
    last = pl.scan_parquet(path).select(pl.col(S.EVENT_TIME).max()).collect().item()
    if last is None:
        msg = f"{path} holds no events"
        raise StageError(msg)
    return last.date()  # type: ignore[no-any-return]


def run_daily(
    cfg: Config,
    *,
    date: dt.date | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    force: bool = False,
) -> DailyResult:
    """Run the chain for one date (default: the last day of the data) or each date of a range.

    Raises
    ------
    StepFailed
        A step failed; earlier outputs stay intact.
    LockHeld
        Another run holds the data directory.
    """
    layout = Layout(cfg.data_dir)
    steps = build_steps(cfg)
    records: dict[dt.date, dict[str, StepRecord]] = {}
    manifests: dict[dt.date, Path] = {}
    with data_dir_lock(layout):
        # Date-independent steps (ingest) run first; the default date needs their output.
        shared = [s for s in steps if not s.per_date]
        per_date = [s for s in steps if s.per_date]
        probe = RunContext(cfg=cfg, layout=layout, date=date or start or dt.date.min)
        shared_records = run_steps(
            shared, probe, manifest_path=layout.runs / "shared.json", force=force
        )
        if start is not None and end is not None:
            if end < start:
                msg = f"--end {end} is before --start {start}"
                raise StageError(msg)
            dates = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
        else:
            dates = [date or last_data_date(layout)]
        for day in dates:
            ctx = RunContext(cfg=cfg, layout=layout, date=day)
            manifest = layout.runs / f"date={day.isoformat()}" / "manifest.json"
            try:
                records[day] = run_steps(
                    per_date, ctx, manifest_path=manifest, force=force, upstream=shared_records
                )
            finally:
                # The report is written for failed runs too: it says where it stopped.
                saved = _load_records(manifest)
                if saved:
                    write_run_report(layout, day, saved)
            manifests[day] = manifest
    return DailyResult(dates=dates, records=records, manifests=manifests)
