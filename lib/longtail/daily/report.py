"""One HTML page per daily run: the headline figures, step timings, links to every report."""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from pathlib import Path
from typing import Any

import polars as pl

from longtail.artifacts import BacktestMetrics, CurrentModel
from longtail.daily.runner import StepRecord, format_metrics
from longtail.paths import Layout
from longtail.reporting import (
    Headline,
    figure,
    headline,
    img_tag,
    link_list,
    page,
    paragraph,
    table,
)
from longtail.runlog import format_seconds

__all__ = ["closing_screen", "run_headline", "stage_links", "write_run_report"]


def _current_manifest(layout: Layout) -> Path:
    pointer = layout.current_model
    if not pointer.is_file():
        return pointer
    return layout.model_manifest(CurrentModel.load(pointer).version)


def stage_links(layout: Layout, date: dt.date) -> list[tuple[str, Path]]:
    """The reports a run can link to, in pipeline order, for those that exist."""
    candidates = [("Ingest summary (JSON)", layout.ingest_summary)]
    for stage in ("canonical", "features", "training", "all"):
        candidates += [
            (
                f"Data quality and imbalance report: {stage}",
                layout.validation_report(date, stage).page,
            ),
            (f"Great Expectations Data Docs: {stage}", layout.data_docs(stage).index),
        ]
    candidates += [
        ("Training-set summary (JSON)", layout.training_set_summary),
        ("Current model: manifest with metrics and calibration", _current_manifest(layout)),
        ("Strategy leaderboard (latest tune run)", layout.tune_latest.report),
        ("Scoring report", layout.scoring_report(date).page),
        ("Recommendations manifest", layout.recommendation_partition(date).manifest),
        ("Backtest: the lists against what users did next", layout.backtest_run(date).report),
    ]
    return [(label, path) for label, path in candidates if path.exists()]


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric(records: dict[str, StepRecord], step: str, key: str) -> Any:
    record = records.get(step)
    return record.metrics.get(key) if record is not None else None


def run_headline(records: dict[str, StepRecord]) -> tuple[list[Headline], str]:
    """The run's three figures that matter and one sentence on what they mean.

    Model quality (test PR-AUC against the base rate a random ranking scores), how
    many users got a list, and how much of the lists is long-tail items.
    """
    pr_auc = _metric(records, "train", "test_pr_auc")
    base = _metric(records, "validate_training", "training_label_rate")
    users = _metric(records, "score", "users")
    coverage = _metric(records, "score", "coverage")
    tail = _metric(records, "score", "tail_share")
    numbers = [
        Headline(
            "model PR-AUC on test",
            f"{pr_auc:.3f}" if pr_auc is not None else "n/a",
            f"random ranking: {base:.3f} (the base rate)" if base is not None else "",
        ),
        Headline(
            "users with a list",
            f"{users:,}" if users is not None else "n/a",
            f"lists use {coverage:.0%} of the catalogue" if coverage is not None else "",
        ),
        Headline(
            "long-tail share of the lists",
            f"{tail:.0%}" if tail is not None else "n/a",
            "of recommended items are tail items",
        ),
    ]
    parts = []
    if pr_auc is not None and base:
        parts.append(
            f"On held-out days the model ranks buyers well above chance: PR-AUC {pr_auc:.3f}, "
            f"where a random ranking scores the base rate {base:.3f} and a perfect one 1.0"
        )
    if users is not None and tail is not None:
        parts.append(
            f"{users:,} users got a ranked list, {tail:.0%} of it from the long tail "
            "(items outside the popular head and torso)"
        )
    sentence = "; ".join(parts) + "." if parts else "No model or lists in this run yet."
    return numbers, sentence


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
    run = layout.daily_run(date)
    out_dir = run.path
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
    links = [(label, os.path.relpath(path, out_dir)) for label, path in stage_links(layout, date)]
    failed = [name for name, r in records.items() if r.status == "failed"]
    verdict = (
        paragraph(f"failed at step {failed[0]}: {records[failed[0]].error or ''}", css_class="bad")
        if failed
        else paragraph("all steps done or unchanged", css_class="ok")
    )
    numbers, sentence = run_headline(records)
    sections = [
        ("Status", verdict),
        ("Steps", table(steps) + img_tag(fig, alt="step durations")),
        ("Reports", link_list(links, empty="no stage reports yet")),
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
    path = run.report
    path.write_text(
        page(
            f"longtail daily run {date.isoformat()}",
            sections,
            subtitle=str(layout.root.resolve()),
            lead=headline(numbers, sentence),
        ),
        encoding="utf-8",
    )
    return path


def _backtest_lines(layout: Layout, date: dt.date) -> list[str]:
    """The backtest's judgement of the lists, when this date has one."""
    path = layout.backtest_metrics(date)
    if not path.is_file():
        return []
    from longtail.backtest.report import best_baseline

    m = BacktestMetrics.load(path)
    k, model = m.k, m.systems["model"]
    best, best_recall = best_baseline(m.as_dict())
    lines = [
        "",
        f"Backtest (lists served {m.holdout_days} days back vs what {m.users_evaluated} "
        "users then bought):",
        f"   recall@{k} {model['recall_at_k']:.3f} (best baseline {best} "
        f"{best_recall:.3f}), NDCG@{k} {model['ndcg_at_k']:.3f}, "
        f"tail recall@{k} {model['tail_recall_at_k']:.3f}",
    ]
    lines += textwrap.wrap(m.verdict, width=90, initial_indent="   ", subsequent_indent="   ")
    lines.append(f"   report: {layout.backtest_run(date).report.resolve()}")
    return lines


def closing_screen(layout: Layout, date: dt.date, records: dict[str, StepRecord]) -> str:
    """The last screen of a run: the steps, the headline figures and what they mean, where to look.

    Written for someone who has never seen the project: the report to open, what its
    three numbers say, and where the full log and the outputs are.
    """
    run = layout.daily_run(date)
    total = sum(r.seconds for r in records.values() if r.status == "done")
    failed = [name for name, r in records.items() if r.status == "failed"]
    state = f"FAILED at {failed[0]}" if failed else "every step done or unchanged"
    lines = ["", f"== longtail daily run {date}: {state} ({format_seconds(total)} of work)"]
    for name, rec in records.items():
        lines.append(
            f"   {name:<20} {rec.status:<13} {format_seconds(rec.seconds):>7}  "
            f"{format_metrics(rec.metrics)}"[:160].rstrip()
        )
    numbers, sentence = run_headline(records)
    lines += ["", "What this run found:"]
    lines += [f"   {n.label:<30} {n.value:>8}   {n.note}" for n in numbers]
    lines += textwrap.wrap(sentence, width=90, initial_indent="   ", subsequent_indent="   ")
    lines += _backtest_lines(layout, date)
    report = run.report.resolve()
    lines += [
        "",
        f"Open the run report in a browser:  {report}",
        "   it links every stage's report: data quality and imbalance, Great Expectations",
        "   Data Docs, the model manifest, the scoring report (all work offline).",
        f"Full log (Feast, Ray, libraries): {run.log}",
        f"Outputs under {layout.root.resolve()}; rerun the same command and nothing is redone.",
    ]
    return "\n".join(lines)
