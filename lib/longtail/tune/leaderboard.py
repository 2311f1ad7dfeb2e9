"""The leaderboard: every trial's settings, metrics (overall and per bucket) and time.

Metrics are recomputed here from each trial's saved predictions, with the same
functions the trial reported with, so the table does not depend on what Tune
kept. A trial may win only if it finished without error, its objective is
defined, and its (cross-fitted) validation ECE is at most ``tune.max_ece``.
Test-split intervals come from :mod:`longtail.tune.stats`: a percentile bootstrap
of the objective, and a paired bootstrap of the difference to the baseline on
the same test rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from longtail.config import TuneConfig
from longtail.metrics import classification_report
from longtail.schema import BUCKETS, SPLIT
from longtail.tune.objective import (
    IntervalInputs,
    Objective,
    interval_inputs,
    objective_label,
    objective_value,
)
from longtail.tune.stats import Interval, bootstrap_ci, paired_bootstrap_diff, verdict
from longtail.tune.trial import PREDICTIONS, TRIAL_JSON

__all__ = [
    "LEADERBOARD_COLUMNS",
    "Comparison",
    "TrialOutcome",
    "build_leaderboard",
    "compare_to_baseline",
    "read_trials",
]

_METRICS: Final = ("pr_auc", "roc_auc", "log_loss", "brier", "ece")
_BUCKET_METRICS: Final = ("pr_auc", "roc_auc", "ece")

#: Leaderboard columns, in order.
LEADERBOARD_COLUMNS: Final[tuple[str, ...]] = (
    "rank",
    "trial_id",
    "label",
    "is_baseline",
    "is_best",
    "eligible",
    "status",
    "strategy",
    "strategy_params",
    "loss",
    "loss_params",
    "learning_rate",
    "embedding_dim",
    "epochs_run",
    "best_epoch",
    "train_rows",
    "objective",
    "val_ece_heldout",
    *(f"{s}_{m}" for s in ("val", "test") for m in (*_METRICS, "recall_at_k")),
    *(f"{s}_{m}_{b}" for s in ("val", "test") for m in _BUCKET_METRICS for b in BUCKETS),
    "test_objective",
    "test_objective_low",
    "test_objective_high",
    "diff_vs_baseline",
    "diff_low",
    "diff_high",
    "beyond_noise",
    "resample_seconds",
    "seconds_to_best",
    "train_seconds",
    "total_seconds",
    "error",
)


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial left behind: its record, its predictions (None if it never saved)."""

    record: dict[str, Any]
    predictions: pl.DataFrame | None
    status: str
    error: str | None = None

    @property
    def trial_id(self) -> str:
        """The Tune trial id."""
        return str(self.record["trial_id"])

    def split(self, name: str) -> pl.DataFrame:
        """Scored rows of one split (``validation`` or ``test``)."""
        if self.predictions is None:
            msg = f"trial {self.trial_id} has no predictions"
            raise ValueError(msg)
        return self.predictions.filter(pl.col(SPLIT) == name)


def read_trials(
    run_dir: Path, *, statuses: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> list[TrialOutcome]:
    """Read every ``<run>/trials/*/`` folder.

    Parameters
    ----------
    run_dir
        The run folder.
    statuses, errors
        Trial id -> status / error text, from Tune's results; a trial missing
        here is ``completed`` when its record says it finished, else ``stopped_early``.
    """
    out = []
    for folder in sorted((run_dir / "trials").glob("*/")):
        path = folder / TRIAL_JSON
        if not path.is_file():
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        pred_path = folder / PREDICTIONS
        predictions = pl.read_parquet(pred_path) if pred_path.is_file() else None
        trial_id = str(record["trial_id"])
        error = (errors or {}).get(trial_id)
        status = (statuses or {}).get(trial_id) or (
            "completed" if record.get("finished") else "stopped_early"
        )
        if error is not None:
            status = "error"
        out.append(TrialOutcome(record, predictions, status, error))
    return out


def _split_metrics(frame: pl.DataFrame, prefix: str, *, k: int) -> dict[str, float | None]:
    table = classification_report(frame)
    out: dict[str, float | None] = {}
    for row in table.iter_rows(named=True):
        scope = row["scope"]
        for metric in _METRICS if scope == "all" else _BUCKET_METRICS:
            key = f"{prefix}_{metric}" if scope == "all" else f"{prefix}_{metric}_{scope}"
            out[key] = _clean(row[metric])
    out[f"{prefix}_recall_at_k"] = _clean(objective_value(frame, "recall_at_k", k=k))
    return out


def _clean(x: Any) -> float | None:
    if x is None:
        return None
    value = float(x)
    return None if math.isnan(value) else value


def _row(outcome: TrialOutcome, tc: TuneConfig, *, k: int) -> dict[str, Any]:
    rec = outcome.record
    row: dict[str, Any] = {
        "trial_id": outcome.trial_id,
        "label": rec.get("label"),
        "is_baseline": bool(rec.get("baseline", False)),
        "status": outcome.status,
        "strategy": rec.get("strategy"),
        "strategy_params": json.dumps(rec.get("strategy_params", {}), sort_keys=True),
        "loss": rec.get("loss"),
        "loss_params": json.dumps(rec.get("loss_params", {}), sort_keys=True),
        "learning_rate": rec.get("learning_rate"),
        "embedding_dim": rec.get("embedding_dim"),
        "epochs_run": rec.get("epochs_run"),
        "best_epoch": rec.get("best_epoch"),
        "train_rows": rec.get("train_rows"),
        "val_ece_heldout": _clean(rec.get("val_ece")),
        "resample_seconds": rec.get("resample_seconds"),
        "seconds_to_best": rec.get("seconds_to_best"),
        "train_seconds": rec.get("train_seconds"),
        "total_seconds": rec.get("total_seconds"),
        "error": outcome.error,
    }
    if outcome.predictions is not None:
        val = outcome.split("validation")
        row["objective"] = _clean(objective_value(val, tc.objective, k=k))
        row.update(_split_metrics(val, "val", k=k))
        row.update(_split_metrics(outcome.split("test"), "test", k=k))
    ece_ok = row["val_ece_heldout"] is not None and row["val_ece_heldout"] <= tc.max_ece
    row["eligible"] = bool(
        outcome.status != "error" and row.get("objective") is not None and ece_ok
    )
    return row


_SCHEMA: Final[dict[str, pl.DataType]] = {
    "rank": pl.Int64(),
    "trial_id": pl.String(),
    "label": pl.String(),
    "is_baseline": pl.Boolean(),
    "is_best": pl.Boolean(),
    "eligible": pl.Boolean(),
    "status": pl.String(),
    "strategy": pl.String(),
    "strategy_params": pl.String(),
    "loss": pl.String(),
    "loss_params": pl.String(),
    "embedding_dim": pl.Int64(),
    "epochs_run": pl.Int64(),
    "best_epoch": pl.Int64(),
    "train_rows": pl.Int64(),
    "beyond_noise": pl.Boolean(),
    "error": pl.String(),
}


def build_leaderboard(outcomes: Sequence[TrialOutcome], tc: TuneConfig, *, k: int) -> pl.DataFrame:
    """One row per trial, eligible trials first by objective (rank 1 is the winner).

    Interval columns are left null here; :func:`compare_to_baseline` fills them.

    Returns
    -------
    pl.DataFrame
        Exactly :data:`LEADERBOARD_COLUMNS`.
    """
    rows = [_row(o, tc, k=k) for o in outcomes]
    schema = {c: _SCHEMA.get(c, pl.Float64()) for c in LEADERBOARD_COLUMNS}
    frame = pl.DataFrame(
        [{c: r.get(c) for c in LEADERBOARD_COLUMNS} for r in rows], schema=schema, strict=False
    )
    frame = frame.sort(
        ["eligible", "objective", "trial_id"], descending=[True, True, False], nulls_last=True
    )
    rank = frame["eligible"].cast(pl.Int64).cum_sum()
    frame = frame.with_columns(
        pl.when(pl.col("eligible")).then(rank).otherwise(None).cast(pl.Int64).alias("rank"),
    ).with_columns((pl.col("rank") == 1).fill_null(False).alias("is_best"))
    return frame.select(LEADERBOARD_COLUMNS)


@dataclass(frozen=True)
class Comparison:
    """The test-split intervals and the verdict."""

    leaderboard: pl.DataFrame
    intervals: pl.DataFrame
    verdict: str
    best_trial: str | None
    baseline_trial: str | None
    diff: Interval | None


def _interval_rows(
    outcomes: dict[str, TrialOutcome],
    chosen: list[str],
    baseline: str | None,
    inputs: IntervalInputs,
    tc: TuneConfig,
) -> tuple[list[dict[str, Any]], dict[str, Interval]]:
    rows, diffs = [], {}
    base_p = inputs.scores(outcomes[baseline].split("test")) if baseline else None
    for trial_id in chosen:
        p = inputs.scores(outcomes[trial_id].split("test"))
        ci = bootstrap_ci(
            inputs.metric,
            inputs.y,
            p,
            rounds=tc.bootstrap_samples,
            level=tc.ci_level,
            seed=0,
            groups=inputs.groups,
        )
        row: dict[str, Any] = {
            "trial_id": trial_id,
            "test_objective": ci.estimate,
            "test_objective_low": ci.low,
            "test_objective_high": ci.high,
        }
        if base_p is not None and trial_id != baseline:
            diff = paired_bootstrap_diff(
                inputs.metric,
                inputs.y,
                p,
                base_p,
                rounds=tc.bootstrap_samples,
                level=tc.ci_level,
                seed=0,
                groups=inputs.groups,
            )
            diffs[trial_id] = diff
            row |= {
                "diff_vs_baseline": diff.estimate,
                "diff_low": diff.low,
                "diff_high": diff.high,
                "beyond_noise": bool(diff.excludes(0.0)),
            }
        rows.append(row)
    return rows, diffs


def compare_to_baseline(
    leaderboard: pl.DataFrame, outcomes: Sequence[TrialOutcome], tc: TuneConfig, *, k: int
) -> Comparison:
    """Bootstrap intervals on the test split for the best few and the baseline, and a verdict.

    The best ``tune.top_k_intervals`` eligible trials (by validation objective)
    and the baseline get a percentile interval of the test objective; each of
    them but the baseline also gets the paired interval of its difference to
    the baseline on the same test rows (whole users resampled when
    ``tune.cluster_by_user``). The verdict compares the winner to the baseline.
    """
    by_id = {o.trial_id: o for o in outcomes if o.predictions is not None}
    ranked = leaderboard.filter(pl.col("eligible") & pl.col("trial_id").is_in(list(by_id)))
    best = ranked["trial_id"][0] if ranked.height else None
    baselines = leaderboard.filter(pl.col("is_baseline") & pl.col("trial_id").is_in(list(by_id)))
    baseline = baselines["trial_id"][0] if baselines.height else None
    chosen = ranked["trial_id"].head(tc.top_k_intervals).to_list()
    if baseline is not None and baseline not in chosen:
        chosen.append(baseline)
    name: Objective = tc.objective
    metric_name = objective_label(name, k=k)
    empty = pl.DataFrame(schema={"trial_id": pl.String()})
    if not chosen:
        text = "No trial produced predictions, so nothing can be compared."
        return Comparison(leaderboard, empty, text, None, baseline, None)
    test = by_id[chosen[0]].split("test")
    inputs = interval_inputs(test, name, k=k, cluster_by_user=tc.cluster_by_user)
    rows, diffs = _interval_rows(by_id, chosen, baseline, inputs, tc)
    intervals = pl.DataFrame(rows)
    for column in ("diff_vs_baseline", "diff_low", "diff_high"):
        if column not in intervals.columns:
            intervals = intervals.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
    if "beyond_noise" not in intervals.columns:
        intervals = intervals.with_columns(pl.lit(None, dtype=pl.Boolean).alias("beyond_noise"))
    filled = leaderboard.update(intervals, on="trial_id", how="left")
    label = {o.trial_id: str(o.record.get("label")) for o in outcomes}
    diff = diffs.get(best) if best is not None else None
    if best is None:
        text = (
            f"No trial met the calibration bound (held-out validation ECE <= {tc.max_ece:g}) "
            "with a defined objective, so no configuration is recommended."
        )
    elif baseline is None:
        text = f"{label[best]} wins on validation {metric_name}; the baseline did not finish."
    else:
        base_value = float(
            intervals.filter(pl.col("trial_id") == baseline)["test_objective"].item()
        )
        text = verdict(
            metric_name=f"test {metric_name}",
            best=label[best],
            baseline=label[baseline],
            diff=diff if diff is not None else Interval(0.0, 0.0, 0.0, tc.ci_level),
            baseline_value=base_value,
        )
    unit = "users" if tc.cluster_by_user or name == "recall_at_k" else "rows"
    text += (
        f" Selected on validation {metric_name} among trials with held-out ECE <= "
        f"{tc.max_ece:g}; intervals from {tc.bootstrap_samples} bootstrap rounds over test "
        f"{unit} ({test.height} rows)."
    )
    return Comparison(filled, intervals, text, best, baseline, diff)
