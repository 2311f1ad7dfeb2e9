"""One HTML page per daily run: step timings and links to every stage's report."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from longtail.daily.runner import StepRecord
from longtail.paths import Layout
from longtail.reporting import figure, img_tag, page, table

__all__ = ["stage_links", "write_run_report"]


def _current_manifest(layout: Layout) -> Path:
    pointer = layout.models / "current.json"
    if not pointer.is_file():
        return pointer
    version = json.loads(pointer.read_text()).get("version", "")
    return layout.models / str(version) / "manifest.json"


def stage_links(layout: Layout, date: dt.date) -> list[tuple[str, Path]]:
    """The reports a run can link to, in pipeline order, for those that exist."""
    validation = layout.reports / "validation" / f"date={date.isoformat()}"
    candidates = [("Ingest summary (JSON)", layout.reports / "ingest_summary.json")]
    for stage in ("canonical", "features", "training", "all"):
        candidates += [
            (f"Data quality and imbalance report: {stage}", validation / stage / "report.html"),
            (
                f"Great Expectations Data Docs: {stage}",
                layout.reports / "data_docs" / stage / "index.html",
            ),
        ]
    candidates += [
        ("Training-set summary (JSON)", layout.reports / "training_set_summary.json"),
        ("Current model: manifest with metrics and calibration", _current_manifest(layout)),
        ("Strategy leaderboard (latest tune run)", layout.tune / "latest" / "report.html"),
        ("Scoring report", layout.scoring_report(date) / "scoring_report.html"),
        ("Recommendations manifest", layout.recommendations(date) / "_manifest.json"),
    ]
    return [(label, path) for label, path in candidates if path.exists()]


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_run_report(
    layout: Layout,
    date: dt.date,
    records: dict[str, StepRecord],
    *,
    order: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``runs/date=D/report.html`` (steps in chain ``order``) and return its path."""
    if order:
        rank = {name: i for i, name in enumerate(order)}
        records = dict(sorted(records.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    out_dir = layout.runs / f"date={date.isoformat()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = pl.DataFrame(
        {
            "step": list(records),
            "status": [r.status for r in records.values()],
            "seconds": [float(r.seconds) for r in records.values()],
            "metrics": [
                ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(r.metrics.items()))
                for r in records.values()
            ],
        }
    )
    fig = figure(7, 0.4 + 0.35 * max(len(records), 1))
    ax = fig.subplots()
    ax.barh(steps["step"].to_list()[::-1], steps["seconds"].to_list()[::-1], color="#3b6fb6")
    ax.set(xlabel="seconds", title="step durations (skipped steps show their last run)")
    links = "".join(
        f'<li><a href="{html.escape(os.path.relpath(path, out_dir))}">{html.escape(label)}</a></li>'
        for label, path in stage_links(layout, date)
    )
    failed = [name for name, r in records.items() if r.status == "failed"]
    verdict = (
        f'<p class="bad">failed at step {html.escape(failed[0])}: '
        f"{html.escape(records[failed[0]].error or '')}</p>"
        if failed
        else '<p class="ok">all steps done or unchanged</p>'
    )
    sections = [
        ("Status", verdict),
        ("Steps", table(steps) + img_tag(fig, alt="step durations")),
        ("Reports", f"<ul>{links}</ul>" if links else "<p>no stage reports yet</p>"),
    ]
    if extra:
        sections.append(
            (
                "Details",
                table(
                    pl.DataFrame({"key": list(extra), "value": [str(v) for v in extra.values()]})
                ),
            )
        )
    path = out_dir / "report.html"
    path.write_text(
        page(
            f"longtail daily run {date.isoformat()}", sections, subtitle=str(layout.root.resolve())
        ),
        encoding="utf-8",
    )
    return path
