"""The data-quality gate: validate what is there, report imbalance, decide pass or fail.

:func:`run_gate` never raises for a failed expectation; it returns a
:class:`GateResult` and the caller decides (the job exits 1, the daily chain
calls :func:`ensure_passed` in its gate steps, which raises :class:`~longtail.errors.GateError`).
Every run writes, under ``DATA_DIR/reports/``:

- ``data_docs/<stage>/`` Great Expectations Data Docs of this stage's run (replaced whole);
- ``validation/date=YYYY-MM-DD/STAGE/summary.json`` and ``report.html`` (replaced whole);
- ``validation_history.jsonl`` one record per date (row counts, label rates, Gini).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

import great_expectations as gx
import polars as pl

from longtail import schema as S
from longtail.config import Config
from longtail.errors import GateError
from longtail.io import atomic_dir, write_json
from longtail.paths import Layout, ValidationReport
from longtail.validation import history as H
from longtail.validation import suites as V
from longtail.validation.engine import Finding, SuiteOutcome, validate_frames
from longtail.validation.report import imbalance_summary, render_html
from longtail.validation.sampling import SAMPLE_SUFFIX, SampledSuite, split_suite

__all__ = [
    "GateResult",
    "Stage",
    "ensure_passed",
    "format_result",
    "run_gate",
]

log = logging.getLogger(__name__)

Stage = Literal["canonical", "features", "training", "all"]
STAGES: Final = ("canonical", "features", "training")
FEATURE_TABLES: Final = {"user_features": S.USER_ID, "item_features": S.ITEM_ID}
#: Every suite a gate can run (``validation.warn_only`` may name only these).
SUITES: Final = (
    "events",
    "items",
    *FEATURE_TABLES,
    *(f"training_{s}" for s in S.SPLITS),
    V.METRICS_SUITE,
)


@dataclass(frozen=True)
class GateResult:
    """What the gate found.

    Attributes
    ----------
    passed
        False when any critical expectation failed.
    failures, warnings
        Failed critical and warning expectations, each with suite, expectation,
        column, observed value and bound.
    skipped
        Tables not validated because they are not there yet, with the path.
    outcomes
        Per suite: rows, expectations evaluated, findings, seconds.
    metrics
        Label rates, item Gini and their drift against the previous run.
    outputs
        Paths of the JSON summary, the HTML report, the Data Docs and the history.
    sampled
        Tables whose feature checks ran on a seeded sample, with its size and the
        checks (:mod:`longtail.validation.sampling`); the rest ran on every row.
    """

    date: dt.date
    stage: str
    passed: bool
    failures: list[Finding]
    warnings: list[Finding]
    skipped: list[str] = field(default_factory=list)
    outcomes: list[SuiteOutcome] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    imbalance: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    sampled: list[SampledSuite] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the ``gate`` part of ``summary.json``)."""
        return {
            "date": self.date.isoformat(),
            "stage": self.stage,
            "passed": self.passed,
            "failures": [f.to_dict() for f in self.failures],
            "warnings": [f.to_dict() for f in self.warnings],
            "skipped": self.skipped,
            "outcomes": [
                {
                    "suite": o.suite,
                    "rows": o.rows,
                    "evaluated": o.evaluated,
                    "failed": len(o.findings),
                    "seconds": round(o.seconds, 3),
                }
                for o in self.outcomes
            ],
            "metrics": self.metrics,
            "outputs": self.outputs,
            "seconds": round(self.seconds, 3),
            "sampled": {s.suite: s.to_dict() for s in self.sampled},
        }


def _missing(suite: str, path: Path, stage: str) -> Finding:
    return Finding(
        suite=suite,
        check="table_exists",
        expectation="table_exists",
        column=None,
        observed="missing",
        bound=f"a file at {path}",
        severity="critical",
        description=f"{V.CHECKS['table_exists']} (stage {stage!r} was asked for)",
    )


@dataclass
class _Tables:
    events: pl.DataFrame | None = None
    items: pl.DataFrame | None = None
    features: dict[str, pl.DataFrame] = field(default_factory=dict)
    training: dict[str, pl.DataFrame] = field(default_factory=dict)
    missing: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _load(layout: Layout, stage: Stage) -> _Tables:
    wanted = STAGES if stage == "all" else (stage,)
    paths: dict[str, dict[str, Path]] = {
        "canonical": {"events": layout.table("events"), "items": layout.table("items")},
        "features": {n: layout.feature_table(n) for n in FEATURE_TABLES},
        "training": {f"training_{s}": layout.split(s) for s in S.SPLITS},
    }
    tables = _Tables()
    for name in wanted:
        for suite, path in paths[name].items():
            if not path.is_file():
                if stage == "all":
                    tables.skipped.append(f"{suite} (no {path})")
                else:
                    tables.missing.append(_missing(suite, path, stage))
                continue
            frame = pl.read_parquet(path)
            if suite == "events":
                tables.events = frame
            elif suite == "items":
                tables.items = frame
            elif name == "features":
                tables.features[suite] = frame
            else:
                tables.training[suite.removeprefix("training_")] = frame
    if stage == "all" and tables.events is None and not tables.features and not tables.training:
        tables.missing.append(_missing("events", layout.table("events"), "all"))
    return tables


def _default_date(tables: _Tables) -> dt.date:
    candidates: list[tuple[pl.DataFrame, str]] = []
    if tables.events is not None:
        candidates.append((tables.events, S.EVENT_TIME))
    candidates += [(f, V.FEATURE_TIMESTAMP) for f in tables.features.values()]
    candidates += [(f, S.EVENT_TIME) for f in tables.training.values()]
    for frame, column in candidates:
        if column in frame.columns and frame.height:
            last = frame[column].max()
            if isinstance(last, dt.datetime):
                return last.date()
    return dt.datetime.now(dt.UTC).date()


def _embargo_counts(layout: Layout) -> list[dict[str, Any]]:
    """The embargo counts the training-set build wrote (empty when there are none yet)."""
    path = layout.training_set_summary
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    value = raw.get("embargo") if isinstance(raw, dict) else None
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _metrics(
    summary: dict[str, Any], previous: dict[str, Any] | None
) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics, the subset the metrics suite checks) with drift against ``previous``."""
    metrics: dict[str, float] = {}
    if "events" in summary:
        ev = summary["events"]
        # No view at all: 0 positives / 1 is a label rate of 0, out of bounds as it should be.
        metrics["events_label_rate"] = ev["positives"] / max(ev["views"], 1)
    if "training" in summary:
        metrics["training_label_rate"] = float(summary["training"]["label_rate"] or 0.0)
    gini = summary.get("popularity", {}).get("gini")
    if gini is not None:
        metrics["item_gini"] = float(gini)
    prev = (previous or {}).get("metrics", {})
    for name in ("events_label_rate", "training_label_rate"):
        if name in metrics and prev.get(name):
            metrics[f"{name}_drift"] = abs(metrics[name] - prev[name]) / prev[name]
    if "item_gini" in metrics and prev.get("item_gini") is not None:
        metrics["item_gini_drift"] = abs(metrics["item_gini"] - prev["item_gini"])
    checked = {k: v for k, v in metrics.items() if k != "item_gini"}
    return metrics, checked


def _pairs(
    cfg: Config, tables: _Tables, bounds: V.RunBounds, checked: dict[str, float]
) -> tuple[list[tuple[gx.ExpectationSuite, pl.DataFrame]], list[SampledSuite]]:
    vcfg = cfg.validation
    pairs: list[tuple[gx.ExpectationSuite, pl.DataFrame]] = []
    sampled: list[SampledSuite] = []

    def derived(suite: gx.ExpectationSuite, frame: pl.DataFrame, keys: Sequence[str]) -> None:
        # Derived tables: feature checks on a sample when big (validation/sampling.py).
        parts, info = split_suite(
            suite, frame, exact_columns=keys, sample_rows=vcfg.sample_rows or None, seed=cfg.seed
        )
        pairs.extend(parts)
        if info is not None:
            sampled.append(info)

    if tables.events is not None:
        ev = tables.events
        pairs.append((V.events_suite(ev.schema, bounds=bounds, cfg=vcfg), ev))
    if tables.items is not None:
        items = tables.items
        pairs.append((V.items_suite(items.schema, bounds=bounds, cfg=vcfg), items))
    for name, frame in tables.features.items():
        entity = FEATURE_TABLES[name]
        suite = V.feature_suite(name, frame.schema, entity=entity, bounds=bounds, cfg=vcfg)
        derived(suite, frame, (entity, V.FEATURE_TIMESTAMP))
    for split, frame in tables.training.items():
        suite = V.training_suite(split, frame.schema, bounds=bounds, cfg=vcfg)
        derived(suite, frame, (*S.TRAINING_KEYS, S.LABEL, S.SPLIT))
    if checked:
        frame = pl.DataFrame({k: [float(v)] for k, v in checked.items()})
        pairs.append((V.metrics_suite(checked, cfg=vcfg), frame))
    return pairs, sampled


def _merge_sampled(outcomes: list[SuiteOutcome], sampled: list[SampledSuite]) -> list[SuiteOutcome]:
    """One outcome per table: a sampled half's counts and findings go under the table's name."""
    info = {s.suite: s for s in sampled}
    names = {o.suite for o in outcomes}
    halves = {
        o.suite.removesuffix(SAMPLE_SUFFIX): o for o in outcomes if o.suite.endswith(SAMPLE_SUFFIX)
    }
    merged: list[SuiteOutcome] = []
    for o in outcomes:
        base = o.suite.removesuffix(SAMPLE_SUFFIX)
        if base != o.suite:  # a sampled half: merged into its exact half, or alone
            if base not in names:
                merged.append(_from_sample(o, info[base]))
            continue
        if base not in halves:
            merged.append(o)
            continue
        rest = _from_sample(halves[base], info[base])
        merged.append(
            replace(
                o,
                rows=info[base].rows,
                evaluated=o.evaluated + rest.evaluated,
                findings=o.findings + rest.findings,
                seconds=o.seconds + rest.seconds,
            )
        )
    return merged


def _from_sample(half: SuiteOutcome, info: SampledSuite) -> SuiteOutcome:
    """The sampled half under the table's name, its findings saying they come from a sample."""
    where = f" (in a seeded sample of {info.sample_rows:,} of {info.rows:,} rows)"
    return replace(
        half,
        suite=info.suite,
        rows=info.rows,
        findings=[replace(f, suite=info.suite, observed=f.observed + where) for f in half.findings],
    )


def run_gate(
    cfg: Config,
    *,
    date: dt.date | None = None,
    stage: Stage = "all",
    now: dt.datetime | None = None,
) -> GateResult:
    """Validate the tables of ``stage`` under ``cfg.data_dir`` and write the reports.

    Long because its parameters are documented; loading, the checks and the reports are their own
    functions.

    Parameters
    ----------
    cfg
        The configuration; ``cfg.validation`` holds the bounds and severities.
    date
        The run date; default the date of the newest canonical event (or snapshot).
    stage
        ``canonical`` (events, items), ``features`` (user and item feature tables),
        ``training`` (the three splits) or ``all``. With ``all``, absent tables
        are skipped and listed; a stage asked for by name must have its tables.
    now
        Reference time of the not-in-the-future checks; default ``cfg.ingest.now``
        or the clock, plus ``cfg.ingest.future_tolerance_hours``.

    Returns
    -------
    GateResult
        ``passed`` is False when a critical expectation failed. Failed
        expectations never raise.

    Raises
    ------
    ConfigError
        ``validation.warn_only`` names no check.
    """
    t0 = time.perf_counter()
    layout = Layout(cfg.data_dir)
    V.check_warn_only(cfg.validation, suites=list(SUITES))
    tables = _load(layout, stage)
    run_date = date or _default_date(tables)
    history_path = layout.reports / H.HISTORY_FILE
    records = H.read_history(history_path)
    previous = H.previous_record(records, date=run_date)
    bounds = _bounds(cfg, run_date, now=now, previous=previous)
    summary = _imbalance(cfg, tables, layout)
    metrics, checked = _metrics(summary, previous)
    pairs, sampled = _pairs(cfg, tables, bounds, checked)
    with_docs = cfg.validation.data_docs and bool(pairs)
    # One Data Docs site per stage, so the daily chain's gates do not overwrite each other.
    docs = layout.data_docs(stage)
    if with_docs:
        with atomic_dir(docs.path) as tmp:
            outcomes = validate_frames(pairs, docs_dir=tmp)
    else:
        outcomes = validate_frames(pairs) if pairs else []
    outcomes = _merge_sampled(outcomes, sampled)
    findings = tables.missing + [f for o in outcomes for f in o.findings]
    failures = [f for f in findings if f.severity == "critical"]
    report = layout.validation_report(run_date, stage)
    outputs = {
        "summary": str(report.summary),
        "report": str(report.page),
        "history": str(history_path),
    }
    # The report links the Data Docs relative to itself, so the data directory can move.
    docs_href = None
    if with_docs:
        outputs["data_docs"] = str(docs.index)
        docs_href = Path(os.path.relpath(docs.index, report.path)).as_posix()
    result = GateResult(
        date=run_date,
        stage=stage,
        passed=not failures,
        failures=failures,
        warnings=[f for f in findings if f.severity != "critical"],
        skipped=tables.skipped,
        outcomes=outcomes,
        metrics=metrics,
        imbalance=summary,
        outputs=outputs,
        seconds=time.perf_counter() - t0,
        sampled=sampled,
    )
    _write_reports(
        result, report.path, history=_record(history_path, result, records), docs_href=docs_href
    )
    return result


def _imbalance(cfg: Config, tables: _Tables, layout: Layout) -> dict[str, Any]:
    """The imbalance summary of the tables there (label rates, popularity, embargo counts)."""
    return imbalance_summary(
        events=tables.events,
        items=tables.items,
        training=tables.training,
        target_event=cfg.labels.target_event,
        top_categories=cfg.validation.top_categories,
        head_share=cfg.features.head_share,
        torso_share=cfg.features.torso_share,
        embargo=_embargo_counts(layout),
    )


def _bounds(
    cfg: Config, run_date: dt.date, *, now: dt.datetime | None, previous: dict[str, Any] | None
) -> V.RunBounds:
    """The run's date window, not-in-the-future reference and previous row counts."""
    ref = now or cfg.ingest.now or dt.datetime.now(dt.UTC)
    if ref.tzinfo is None:
        ref = ref.replace(tzinfo=dt.UTC)
    return V.RunBounds.for_date(
        run_date,
        window_days=cfg.validation.window_days,
        now=ref + dt.timedelta(hours=cfg.ingest.future_tolerance_hours),
        previous_rows=(previous or {}).get("rows", {}),
    )


def _write_reports(
    result: GateResult, out_dir: Path, *, history: list[dict[str, Any]], docs_href: str | None
) -> None:
    """``summary.json`` and ``report.html`` of the run, replacing the folder whole."""
    with atomic_dir(out_dir) as tmp:
        files = ValidationReport(tmp)
        gate = result.to_dict()
        write_json({"gate": gate, "imbalance": result.imbalance}, files.summary)
        render_html(
            files.page,
            gate=gate,
            summary=result.imbalance,
            history=history,
            docs_href=docs_href,
        )


def _record(path: Path, result: GateResult, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge this run into the date's history record (one record per date, per-stage verdicts)."""
    old = next((r for r in records if r["date"] == result.date.isoformat()), {})
    stages = {**old.get("stages", {}), result.stage: result.passed}
    record = {
        "date": result.date.isoformat(),
        "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "stages": stages,
        "passed": all(stages.values()),
        "rows": {
            **old.get("rows", {}),
            **{o.suite: o.rows for o in result.outcomes if o.suite != V.METRICS_SUITE},
        },
        "metrics": {**old.get("metrics", {}), **result.metrics},
        "failures": len(result.failures),
        "warnings": len(result.warnings),
    }
    return H.record_run(path, record)


def format_result(result: GateResult) -> str:
    """The gate's verdict in lines: one per failure and warning, then what was skipped."""
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [
        f"validation gate {verdict} for {result.date} (stage {result.stage}): "
        f"{len(result.failures)} critical failure(s), {len(result.warnings)} warning(s), "
        f"{len(result.outcomes)} suite(s) in {result.seconds:.1f}s"
    ]
    lines += [f"  {f.message()}" for f in result.failures + result.warnings]
    lines += [f"  skipped: {s}" for s in result.skipped]
    lines += [f"  sampled: {s.line()}" for s in result.sampled]
    lines += [f"  {name}: {path}" for name, path in result.outputs.items()]
    return "\n".join(lines)


def ensure_passed(result: GateResult) -> None:
    """Raise :class:`GateError` listing every critical failure when the gate failed.

    Raises
    ------
    GateError
        ``result.passed`` is False.
    """
    if not result.passed:
        details = "; ".join(f.message() for f in result.failures)
        msg = f"validation gate failed for {result.date} (stage {result.stage}): {details}"
        raise GateError(msg)
