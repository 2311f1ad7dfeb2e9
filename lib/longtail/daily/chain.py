"""The steps of the daily chain and the driver over a date or a range of dates.

With an object store for the data directory (``[storage]``) the driver-side steps
(ingest, the gates, features) write the local working copy; a ``push`` step then
commits its ``features/`` and ``training/`` to the store, and the Ray steps run on the
store: resample writes the resampled rows there, train uploads the model there (and
pulls it into the working copy, whose ``models/`` the schedule and the reports read),
score's actors read only the store and its lists are committed there too, and the
backtest runs its rebuilt chain's Ray stages on the store as well.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from longtail import schema as S
from longtail.artifacts import LastTrained
from longtail.config import Config, GenericSource, RetailRocketSource
from longtail.daily.report import write_run_report
from longtail.daily.runner import RunContext, Step, StepRecord, data_dir_lock, run_steps
from longtail.errors import StageError
from longtail.paths import Layout
from longtail.storage import store_of

if TYPE_CHECKING:
    from longtail.runlog import RunLog
    from longtail.validation import Stage

__all__ = [
    "DailyResult",
    "build_steps",
    "gate_step",
    "last_data_date",
    "run_daily",
]

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


def _snapshot_until(ctx: RunContext) -> dt.date:
    # Run date D uses every event of D: the same cut as scoring (D+1 00:00 UTC).
    from longtail.scoring.pipeline import scoring_time

    return scoring_time(ctx.date).date()


def _features(ctx: RunContext) -> dict[str, Any]:
    from longtail.features.pipeline import run_features

    run = run_features(ctx.cfg, until=_snapshot_until(ctx))
    metrics: dict[str, Any] = {"user_rows": run.user_rows, "item_rows": run.item_rows}
    for line in run.training.lines():
        log.info("%s", line)
    metrics.update({f"{k}_rows": v for k, v in _split_rows(ctx.layout).items()})
    return metrics


def _split_rows(layout: Layout) -> dict[str, int]:
    return {
        split: pl.scan_parquet(layout.split(split)).select(pl.len()).collect().item()
        for split in S.SPLITS
        if layout.split(split).is_file()
    }


def _push(ctx: RunContext) -> dict[str, Any]:
    store = store_of(ctx.cfg)
    if store is None:  # build_steps adds this step only with a store
        msg = "the push step needs [storage] uri"
        raise StageError(msg)
    keys = store.push(ctx.layout.root, ["features", "training"])
    return {"objects": len(keys)}


def _strategy(ctx: RunContext) -> str:
    return effective_config(ctx.cfg, ctx.layout).resampling.strategy


def _resample(ctx: RunContext) -> dict[str, Any]:
    from longtail.ray_runtime import ensure_ray
    from longtail.resampling import resample_train_split

    cfg = effective_config(ctx.cfg, ctx.layout)
    if cfg.resampling.strategy == "none":
        # Nothing to do, and recorded as done: train reads the split as it is.
        return {"strategy": "none"}
    ensure_ray()
    report = resample_train_split(store_of(cfg) or ctx.layout, cfg.resampling, seed=cfg.seed)
    return {"strategy": cfg.resampling.strategy, **report.overall.to_dict()["after"]}


def _last_trained(layout: Layout) -> dt.date | None:
    if not layout.last_trained.is_file():
        return None
    return LastTrained.load(layout.last_trained).date


def _train_due(ctx: RunContext) -> bool:
    policy = ctx.cfg.daily.retrain
    last = _last_trained(ctx.layout)
    if last is None or not ctx.layout.current_model.is_file():
        return True  # no model yet: always train
    if policy == "always":
        return True
    if policy == "never":
        return False
    # "schedule": retrain every N days, and never train on a date before the model's.
    return (ctx.date - last).days >= ctx.cfg.train.retrain_every_days or ctx.date < last


def _train(ctx: RunContext) -> dict[str, Any]:
    from longtail.train import fit

    cfg = effective_config(ctx.cfg, ctx.layout)
    # fit starts Ray when the run needs it (worker actors, Ray Data), not for Ray
    # Train's local mode reading the files itself.
    strategy = cfg.resampling.strategy
    version = f"{ctx.date.isoformat()}-{strategy}-{cfg.train.loss}"
    store = store_of(cfg)
    result = fit(store or ctx.layout, cfg, strategy=strategy, version=version)
    if store is not None:
        # The working copy keeps the store's models: the schedule, the score step's
        # fingerprint and the run report read them there.
        store.pull(ctx.layout.root, ["models"])
    LastTrained(date=ctx.date, version=result.version).write(ctx.layout.last_trained)
    overall = result.metrics.filter((pl.col("split") == "test") & (pl.col("scope") == "all"))
    row = overall.row(0, named=True) if overall.height else {}
    return {
        "version": result.version,
        **{f"test_{k}": round(float(row[k]), 4) for k in ("roc_auc", "pr_auc", "ece") if k in row},
    }


def _score(ctx: RunContext) -> dict[str, Any]:
    from longtail.scoring.pipeline import run_scoring

    result = run_scoring(ctx.cfg, date=ctx.date)
    m = result.manifest
    return {
        "users": m["users_written"],
        "rows": m["rows"],
        "short_lists": m["short_lists"],
        "coverage": round(float(result.summary["catalog_coverage"]), 4),
        "tail_share": round(float(result.summary["tail_share"]), 4),
    }


def _backtest(ctx: RunContext) -> dict[str, Any]:
    from longtail.backtest import run_backtest

    result = run_backtest(effective_config(ctx.cfg, ctx.layout), date=ctx.date)
    m = result.metrics
    model = m.systems["model"]
    return {
        "users_evaluated": m.users_evaluated,
        "recall_at_k": round(float(model["recall_at_k"]), 4),
        "ndcg_at_k": round(float(model["ndcg_at_k"]), 4),
        "tail_recall_at_k": round(float(model["tail_recall_at_k"]), 4),
        "verdict": m.verdict,
    }


def effective_config(cfg: Config, layout: Layout) -> Config:
    """The config the daily job trains with: the tuned best configuration, when allowed.

    ``daily.use_tuned``: ``beyond_noise`` (default) applies ``tune/best.json`` only
    when its paired test interval against the baseline excludes zero; ``always``
    applies any winner; ``never`` ignores tuning.
    """
    from longtail.tune import apply_best, load_best

    policy = cfg.daily.use_tuned
    best = load_best(layout) if policy != "never" else None
    if best is None:
        return cfg
    # Beyond noise *and* better: the paired interval of (winner - baseline) lies above zero.
    if policy == "beyond_noise" and not best.better_beyond_noise():
        return cfg
    return apply_best(cfg, best)


def _tune_best(ctx: RunContext) -> Path:
    return ctx.layout.tune_best


def gate_step(*, stage: Stage = "all", name: str | None = None) -> Step:
    """A chain step that runs the data-quality gate for the run date and stops the chain on failure.

    Put one after the features step (``stage="features"``) and one after the
    training set (``stage="training"``), before training and scoring.
    """
    # Imported here: Great Expectations is slow to import and most callers never gate.
    from longtail.validation import ensure_passed, format_result, run_gate

    layout_dirs: dict[str, tuple[str, ...]] = {
        "canonical": ("canonical",),
        "features": ("features",),
        "training": ("training",),
        "all": ("canonical", "features", "training"),
    }

    def inputs(ctx: RunContext) -> list[Path]:
        return [ctx.layout.root / d for d in layout_dirs[stage]]

    def run(ctx: RunContext) -> dict[str, Any]:
        result = run_gate(ctx.cfg, date=ctx.date, stage=stage)
        for line in format_result(result).splitlines():
            log.info("%s", line)
        ensure_passed(result)
        return {"warnings": len(result.warnings), **result.metrics}

    return Step(
        name=name or (f"validate_{stage}" if stage != "all" else "validate"),
        run=run,
        inputs=inputs,
        outputs=lambda ctx: [ctx.layout.validation_report(ctx.date, stage).path],
        config=("validation", "labels", "features", "ingest"),
    )


def _push_step() -> Step:
    """Commit what the Ray steps read (features, training) to the object store."""
    return Step(
        name="push",
        run=_push,
        inputs=lambda c: [c.layout.features, c.layout.training],
        outputs=lambda c: [],  # objects in the store: nothing local to check
        config=("storage",),
    )


def build_steps(cfg: Config) -> list[Step]:
    """The chain, in order: ingest, gate, features, gates, resample, train, score, backtest.

    With ``[storage]`` a ``push`` step after the gates commits what the Ray steps read.
    """
    on_store = cfg.storage.uri is not None
    return [
        Step(
            name="ingest",
            run=_ingest,
            inputs=_source_files,
            outputs=lambda c: [c.layout.canonical, c.layout.ingest_summary],
            config=("source", "ingest"),
            per_date=False,
        ),
        gate_step(stage="canonical"),
        Step(
            name="features",
            run=_features,
            inputs=lambda c: [c.layout.canonical],
            outputs=lambda c: [c.layout.features, c.layout.training],
            config=("features", "labels", "split", "feature_store"),
        ),
        gate_step(stage="features"),
        gate_step(stage="training"),
        *([_push_step()] if on_store else []),
        Step(
            name="resample",
            run=_resample,
            inputs=lambda c: [c.layout.split("train"), _tune_best(c)],
            outputs=lambda c: (
                [c.layout.resampled_strategy(_strategy(c))]
                if _strategy(c) != "none" and not on_store
                else []
            ),
            config=("resampling",),
        ),
        Step(
            name="train",
            run=_train,
            inputs=lambda c: [
                c.layout.training,
                c.layout.resampled_strategy(_strategy(c)),
                _tune_best(c),
            ],
            outputs=lambda c: [c.layout.current_model],
            config=("train", "resampling", "feature_store"),
            when=_train_due,
        ),
        Step(
            name="score",
            run=_score,
            inputs=lambda c: [
                c.layout.canonical,
                c.layout.features,
                c.layout.current_model,
            ],
            outputs=lambda c: [c.layout.recommendations(c.date)],
            config=("score", "feature_store"),
        ),
        Step(
            name="backtest",
            run=_backtest,
            inputs=lambda c: [c.layout.canonical, _tune_best(c)],
            outputs=lambda c: [c.layout.backtest_metrics(c.date)],
            config=(
                "backtest",
                "labels",
                "split",
                "features",
                "resampling",
                "train",
                "score",
            ),
            when=lambda c: c.cfg.daily.backtest,
        ),
    ]


def _load_records(manifest: Path) -> dict[str, StepRecord]:
    if not manifest.is_file():
        return {}
    steps = json.loads(manifest.read_text()).get("steps", {})
    return {name: StepRecord(**rec) for name, rec in steps.items()}


def last_data_date(layout: Layout) -> dt.date:
    """The date of the last canonical event (the default run date)."""
    from longtail.ingest.pipeline import last_event_date

    return last_event_date(layout)


def run_daily(
    cfg: Config,
    *,
    date: dt.date | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    force: bool = False,
    run_log: RunLog | None = None,
) -> DailyResult:
    """Run the chain for one date (default: the last day of the data) or each date of a range.

    With ``run_log``, each date's log goes to ``DATA_DIR/runs/date=D/run.log``.

    Raises
    ------
    StepFailed
        A step failed; earlier outputs stay intact.
    LockHeld
        Another run holds the data directory.
    """
    layout = Layout(cfg.data_dir)
    steps = build_steps(cfg)
    if cfg.storage.uri is not None:
        log.info(
            "daily on %s: ingest, gates and features write the working copy %s",
            cfg.storage.uri, layout.root,
        )  # fmt: skip
    records: dict[dt.date, dict[str, StepRecord]] = {}
    manifests: dict[dt.date, Path] = {}
    with data_dir_lock(layout, job="daily"):
        # Date-independent steps (ingest) run first; the default date needs their output.
        shared = [s for s in steps if not s.per_date]
        per_date = [s for s in steps if s.per_date]
        probe = RunContext(cfg=cfg, layout=layout, date=date or start or dt.date.min)
        shared_records = run_steps(
            shared, probe, manifest_path=layout.shared_steps_manifest, force=force
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
            run_files = layout.daily_run(day)
            manifest = run_files.manifest
            if run_log is not None:
                log.info("run %s: log in %s", day, run_log.use(run_files.log))
            try:
                records[day] = run_steps(
                    per_date, ctx, manifest_path=manifest, force=force, upstream=shared_records
                )
            finally:
                # The report is written for failed runs too: it says where it stopped.
                saved = _load_records(manifest)
                if saved:
                    write_run_report(layout, day, saved, order=[s.name for s in steps])
            manifests[day] = manifest
    return DailyResult(dates=dates, records=records, manifests=manifests)
