"""The leaderboard: every trial, every configuration, and intervals a verdict can stand on.

Metrics are recomputed here from each trial's saved predictions, with the same
functions the trial reported with, so the tables do not depend on what Tune
kept. Two tables:

- the *trial* board: one row per trial (configuration x draw x seed), with its
  settings, validation and test metrics overall and per bucket, and time;
- the *configuration* table: one row per strategy x loss at its selected draw
  (the draw with the best seed-averaged validation objective among eligible
  draws), ranked; eligible when its seed-averaged held-out validation
  calibration meets ``tune.max_relative_ece``, ``tune.min_log_loss_skill``,
  ``tune.min_brier_skill`` (and ``tune.max_ece`` when set), so a predictor no
  better than the base rate, such as a constant 0, can never win.

Test intervals (:func:`longtail.tune.stats.seed_interval`) combine the spread
between seeds with a user-clustered bootstrap of the test split, paired with the
baseline round by round, for the objective and for the per-bucket PR-AUC and
calibration effects of every configuration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from longtail.config import TuneConfig
from longtail.metrics import classification_report
from longtail.paths import TuneRun, TuneTrial
from longtail.schema import BUCKETS, SPLIT
from longtail.tune.objective import (
    LIST_OBJECTIVES,
    objective_label,
    objective_value,
    test_scores,
    test_units,
)
from longtail.tune.stats import SeedInterval, SeedValues, bootstrap_values, seed_interval, verdict

__all__ = [
    "CONFIG_COLUMNS",
    "EFFECTS",
    "LEADERBOARD_COLUMNS",
    "Comparison",
    "TrialOutcome",
    "ValueCache",
    "build_leaderboard",
    "compare_groups",
    "compare_to_baseline",
    "eligible_calibration",
    "read_trials",
]

_METRICS: Final = (
    "pr_auc",
    "roc_auc",
    "log_loss",
    "brier",
    "ece",
    "relative_ece",
    "log_loss_skill",
    "brier_skill",
)
_BUCKET_METRICS: Final = ("pr_auc", "roc_auc", "ece")
#: Held-out (cross-fitted) validation calibration columns; the trial records them as ``val_*``.
_CALIBRATION: Final = ("heldout_relative_ece", "heldout_log_loss_skill", "heldout_brier_skill")

#: What the configuration table reports against the baseline, with intervals.
EFFECTS: Final[tuple[str, ...]] = (
    *(f"pr_auc_{b}" for b in BUCKETS),
    "log_loss_skill",
    "brier_skill",
    "relative_ece",
)

#: Trial board columns, in order.
LEADERBOARD_COLUMNS: Final[tuple[str, ...]] = (
    "trial_id",
    "label",
    "is_baseline",
    "selected",
    "eligible",
    "status",
    "strategy",
    "strategy_params",
    "loss",
    "loss_params",
    "learning_rate",
    "embedding_dim",
    "draw",
    "seed",
    "replica",
    "epochs_run",
    "best_epoch",
    "train_rows",
    "loss_weight_ratio",
    "objective",
    "heldout_ece",
    *_CALIBRATION,
    *(f"{s}_{m}" for s in ("val", "test") for m in (*_METRICS, "recall_at_k")),
    *(f"{s}_{m}_{b}" for s in ("val", "test") for m in _BUCKET_METRICS for b in BUCKETS),
    "resample_seconds",
    "seconds_to_best",
    "train_seconds",
    "total_seconds",
    "error",
)

#: Configuration table columns, in order.
CONFIG_COLUMNS: Final[tuple[str, ...]] = (
    "rank",
    "label",
    "is_baseline",
    "is_best",
    "eligible",
    "strategy",
    "strategy_params",
    "loss",
    "loss_params",
    "learning_rate",
    "embedding_dim",
    "draw",
    "seeds",
    "loss_weight_ratio",
    "objective",
    "objective_sd",
    *_CALIBRATION,
    "test_objective",
    "test_objective_low",
    "test_objective_high",
    "diff_vs_baseline",
    "diff_low",
    "diff_high",
    "beyond_noise",
    "se_test",
    "se_seed",
    *(f"{p}{m}" for m in EFFECTS for p in ("test_", "diff_")),
    *(f"diff_{m}_{e}" for m in EFFECTS for e in ("low", "high")),
    "total_seconds",
)


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial left behind: its record, its predictions (None if it never saved)."""

    record: dict[str, Any]
    predictions: pl.DataFrame | None
    status: str
    error: str | None = None
    folder: Path | None = None

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
    for folder in sorted(TuneRun(run_dir).trials.glob("*/")):
        files = TuneTrial(folder)
        if not files.record.is_file():
            continue
        record = json.loads(files.record.read_text(encoding="utf-8"))
        pred_path = files.predictions
        predictions = pl.read_parquet(pred_path) if pred_path.is_file() else None
        trial_id = str(record["trial_id"])
        error = (errors or {}).get(trial_id)
        status = (statuses or {}).get(trial_id) or (
            "completed" if record.get("finished") else "stopped_early"
        )
        if error is not None:
            status = "error"
        out.append(TrialOutcome(record, predictions, status, error, folder))
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


def eligible_calibration(values: dict[str, float | None], tc: TuneConfig) -> bool:
    """Whether held-out validation calibration meets the bounds (a missing value fails).

    ``values`` holds ``heldout_relative_ece``, ``heldout_log_loss_skill``,
    ``heldout_brier_skill`` and ``heldout_ece``.
    """
    rel, ll, bs = (values.get(c) for c in _CALIBRATION)
    if rel is None or ll is None or bs is None:
        return False
    ok = rel <= tc.max_relative_ece and ll > tc.min_log_loss_skill and bs > tc.min_brier_skill
    if tc.max_ece is not None:
        absolute = values.get("heldout_ece")
        ok = ok and absolute is not None and absolute <= tc.max_ece
    return bool(ok)


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
        "draw": rec.get("draw", 0),
        "seed": rec.get("seed"),
        "replica": rec.get("replica", 0),
        "epochs_run": rec.get("epochs_run"),
        "best_epoch": rec.get("best_epoch"),
        "train_rows": rec.get("train_rows"),
        "loss_weight_ratio": rec.get("loss_weight_ratio"),
        "heldout_ece": _clean(rec.get("val_ece")),
        **{c: _clean(rec.get(c.replace("heldout_", "val_"))) for c in _CALIBRATION},
        "resample_seconds": rec.get("resample_seconds"),
        "seconds_to_best": rec.get("seconds_to_best"),
        "train_seconds": rec.get("train_seconds"),
        "total_seconds": rec.get("total_seconds"),
        "error": outcome.error,
    }
    if outcome.predictions is not None:
        val = outcome.split("validation")
        row["objective"] = _clean(objective_value(val, tc.objective, k=k, trial_dir=outcome.folder))
        row.update(_split_metrics(val, "val", k=k))
        row.update(_split_metrics(outcome.split("test"), "test", k=k))
    row["eligible"] = bool(
        outcome.status != "error"
        and row.get("objective") is not None
        and eligible_calibration(row, tc)
    )
    return row


_SCHEMA: Final[dict[str, pl.DataType]] = {
    "rank": pl.Int64(),
    "trial_id": pl.String(),
    "label": pl.String(),
    "is_baseline": pl.Boolean(),
    "is_best": pl.Boolean(),
    "selected": pl.Boolean(),
    "eligible": pl.Boolean(),
    "status": pl.String(),
    "strategy": pl.String(),
    "strategy_params": pl.String(),
    "loss": pl.String(),
    "loss_params": pl.String(),
    "embedding_dim": pl.Int64(),
    "draw": pl.Int64(),
    "seed": pl.Int64(),
    "replica": pl.Int64(),
    "seeds": pl.Int64(),
    "epochs_run": pl.Int64(),
    "best_epoch": pl.Int64(),
    "train_rows": pl.Int64(),
    "beyond_noise": pl.Boolean(),
    "error": pl.String(),
}


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pl.DataFrame:
    schema = {c: _SCHEMA.get(c, pl.Float64()) for c in columns}
    return pl.DataFrame([{c: r.get(c) for c in columns} for r in rows], schema=schema, strict=False)


def build_leaderboard(outcomes: Sequence[TrialOutcome], tc: TuneConfig, *, k: int) -> pl.DataFrame:
    """One row per trial, by configuration, draw and replica (``selected`` is filled later).

    Returns
    -------
    pl.DataFrame
        Exactly :data:`LEADERBOARD_COLUMNS`.
    """
    rows = [_row(o, tc, k=k) for o in outcomes]
    frame = _frame(rows, LEADERBOARD_COLUMNS).with_columns(pl.lit(False).alias("selected"))
    return frame.sort(["label", "draw", "replica", "trial_id"], nulls_last=True).select(
        LEADERBOARD_COLUMNS
    )


def _mean(values: Sequence[Any]) -> float | None:
    clean = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(clean)) if clean else None


def _configurations(board: pl.DataFrame, tc: TuneConfig) -> pl.DataFrame:
    """Seed-averaged draws, the best draw of each configuration, ranked (no intervals yet)."""
    scored = board.filter(pl.col("objective").is_not_null() & (pl.col("status") != "error"))
    rows = []
    for (label, draw), part in scored.group_by(["label", "draw"], maintain_order=True):
        first = part.row(0, named=True)
        means = {c: _mean(part[c].to_list()) for c in ("heldout_ece", *_CALIBRATION)}
        objective = _mean(part["objective"].to_list())
        rows.append(
            {
                "label": label,
                "draw": draw,
                "is_baseline": first["is_baseline"],
                "strategy": first["strategy"],
                "strategy_params": first["strategy_params"],
                "loss": first["loss"],
                "loss_params": first["loss_params"],
                "learning_rate": first["learning_rate"],
                "embedding_dim": first["embedding_dim"],
                "seeds": part.height,
                "loss_weight_ratio": _mean(part["loss_weight_ratio"].to_list()),
                "objective": objective,
                "objective_sd": float(np.std(part["objective"].to_numpy(), ddof=1))
                if part.height > 1
                else None,
                **{c: means[c] for c in _CALIBRATION},
                "eligible": objective is not None and eligible_calibration(means, tc),
                "total_seconds": float(part["total_seconds"].fill_null(0.0).sum()),
            }
        )
    draws = _frame(rows, CONFIG_COLUMNS)
    best = draws.sort(
        ["eligible", "objective", "draw"], descending=[True, True, False], nulls_last=True
    ).unique("label", keep="first", maintain_order=True)
    best = best.sort(
        ["eligible", "objective", "label"], descending=[True, True, False], nulls_last=True
    )
    rank = best["eligible"].cast(pl.Int64).cum_sum()
    return best.with_columns(
        pl.when(pl.col("eligible")).then(rank).otherwise(None).cast(pl.Int64).alias("rank")
    ).with_columns((pl.col("rank") == 1).fill_null(False).alias("is_best"))


@dataclass(frozen=True)
class Comparison:
    """The configuration table with its intervals, and the verdict."""

    leaderboard: pl.DataFrame
    configurations: pl.DataFrame
    verdict: str
    best_trial: str | None
    baseline_trial: str | None
    diff: SeedInterval | None
    best_label: str | None = None


#: Trial id -> metric -> its full-test value and bootstrap rounds (rounds are seeded, so shared).
ValueCache = dict[str, dict[str, SeedValues]]


def _trial_values(
    o: TrialOutcome, tc: TuneConfig, *, k: int, units: np.ndarray
) -> dict[str, SeedValues]:
    scores = test_scores(o.split("test"), tc.objective, k=k, trial_dir=o.folder)
    out: dict[str, SeedValues] = {}
    done: dict[int, SeedValues] = {}
    for name, score in scores.items():
        if id(score) not in done:  # the objective is often pr_auc itself
            full = float(score(np.ones((1, units.size)))[0])
            rounds = bootstrap_values(score, units, rounds=tc.bootstrap_samples, seed=0)
            done[id(score)] = SeedValues(full, rounds)
        out[name] = done[id(score)]
    return out


def _seed_values(
    outcomes: Sequence[TrialOutcome],
    tc: TuneConfig,
    *,
    k: int,
    units: np.ndarray,
    cache: ValueCache,
) -> dict[str, list[SeedValues]]:
    out: dict[str, list[SeedValues]] = {}
    for o in outcomes:
        if o.trial_id not in cache:
            cache[o.trial_id] = _trial_values(o, tc, k=k, units=units)
        for name, values in cache[o.trial_id].items():
            out.setdefault(name, []).append(values)
    return out


def compare_groups(
    candidate: Sequence[TrialOutcome],
    baseline: Sequence[TrialOutcome] | None,
    tc: TuneConfig,
    *,
    k: int,
    cache: ValueCache | None = None,
) -> dict[str, SeedInterval]:
    """Seed x test-user intervals of every test metric of ``candidate`` (minus ``baseline``).

    Each group is one configuration's trials, one per seed, all scored on the
    same test rows. Keys are those of :func:`longtail.tune.objective.test_scores`.
    ``cache`` keeps each trial's bootstrap values between calls (the rounds are
    the same for every trial, which is what pairs them).
    """
    cache = {} if cache is None else cache
    test = candidate[0].split("test")
    units = test_units(test, tc.objective, cluster_by_user=tc.cluster_by_user)
    cand = _seed_values(candidate, tc, k=k, units=units, cache=cache)
    base = _seed_values(baseline, tc, k=k, units=units, cache=cache) if baseline else None
    return {
        name: seed_interval(values, None if base is None else base[name], level=tc.ci_level)
        for name, values in cand.items()
    }


def _fairness(tc: TuneConfig, draws: int) -> str:
    if tc.hyperparameters == "fixed":
        return (
            "Every configuration, the baseline included, ran at the same fixed learning rate "
            "and embedding size."
        )
    return (
        f"Every configuration, the baseline included, was trained at the same {draws} "
        "learning-rate/embedding-size draw(s) and kept its best draw on validation."
    )


def compare_to_baseline(
    leaderboard: pl.DataFrame, outcomes: Sequence[TrialOutcome], tc: TuneConfig, *, k: int
) -> Comparison:
    """Select each configuration's draw, fill its intervals against the baseline, and judge.

    Every configuration gets the seed x test-user interval of its test objective,
    of its difference to the baseline, and of the differences in per-bucket
    PR-AUC and calibration (:data:`EFFECTS`). The verdict compares the winner
    (best seed-averaged validation objective among eligible configurations) to
    the baseline and says how the comparison was made.
    """
    by_id = {o.trial_id: o for o in outcomes if o.predictions is not None}
    board = leaderboard.filter(pl.col("trial_id").is_in(list(by_id)))
    configs = _configurations(board, tc)
    metric_name = objective_label(tc.objective, k=k)
    if not configs.height:
        text = "No trial produced predictions, so nothing can be compared."
        return Comparison(leaderboard, configs, text, None, None, None)
    members: dict[str, list[TrialOutcome]] = {}
    for row in configs.iter_rows(named=True):
        ids = board.filter((pl.col("label") == row["label"]) & (pl.col("draw") == row["draw"]))
        members[row["label"]] = [by_id[t] for t in ids["trial_id"]]
    base_rows = configs.filter(pl.col("is_baseline"))
    base_label = base_rows["label"][0] if base_rows.height else None
    base_group = members.get(base_label) if base_label else None
    filled = []
    diffs: dict[str, SeedInterval] = {}
    cache: ValueCache = {}
    for row in configs.iter_rows(named=True):
        group = members[row["label"]]
        baseline = base_group if row["label"] != base_label else None
        out, gap = _intervals(row, group, baseline, tc, k=k, cache=cache)
        if gap is not None:
            diffs[row["label"]] = gap
        filled.append(out)
    table = _frame(filled, CONFIG_COLUMNS).select(CONFIG_COLUMNS)
    selected = [t.trial_id for g in members.values() for t in g]
    leaderboard = leaderboard.with_columns(pl.col("trial_id").is_in(selected).alias("selected"))
    best_rows = table.filter(pl.col("is_best"))
    best_label = best_rows["label"][0] if best_rows.height else None

    def _top(label: str | None) -> str | None:
        if label is None:
            return None
        group = sorted(members[label], key=lambda o: -_objective(leaderboard, o.trial_id))
        return group[0].trial_id

    diff: SeedInterval | None = diffs.get(best_label) if best_label else None
    text = _verdict_text(
        table,
        tc,
        metric_name=metric_name,
        best_label=best_label,
        base_label=base_label,
        diff=diff,
        draws=leaderboard["draw"].n_unique() if leaderboard.height else 1,
        test_rows=next(iter(by_id.values())).split("test").height,
    )
    return Comparison(
        leaderboard, table, text, _top(best_label), _top(base_label), diff, best_label
    )


def _intervals(
    row: dict[str, Any],
    group: list[TrialOutcome],
    base_group: list[TrialOutcome] | None,
    tc: TuneConfig,
    *,
    k: int,
    cache: ValueCache,
) -> tuple[dict[str, Any], SeedInterval | None]:
    """One configuration's row with its test intervals, and its difference to the baseline.

    The difference (and the ``diff_*`` columns) only when ``base_group`` is given.
    """
    alone = compare_groups(group, None, tc, k=k, cache=cache)
    out = dict(row)
    obj = alone["objective"]
    out |= {
        "test_objective": obj.estimate,
        "test_objective_low": obj.low,
        "test_objective_high": obj.high,
        "se_test": obj.se_test,
        "se_seed": obj.se_seed,
    }
    for m in EFFECTS:
        out[f"test_{m}"] = alone[m].estimate if m in alone else None
    if base_group is None:
        return out, None
    paired = compare_groups(group, base_group, tc, k=k, cache=cache)
    gap = paired["objective"]
    out |= {
        "diff_vs_baseline": gap.estimate,
        "diff_low": gap.low,
        "diff_high": gap.high,
        "beyond_noise": bool(gap.excludes(0.0)),
        "se_test": gap.se_test,
        "se_seed": gap.se_seed,
    }
    for m in EFFECTS:
        if m in paired:
            out |= {
                f"diff_{m}": paired[m].estimate,
                f"diff_{m}_low": paired[m].low,
                f"diff_{m}_high": paired[m].high,
            }
    return out, gap


def _verdict_text(
    table: pl.DataFrame,
    tc: TuneConfig,
    *,
    metric_name: str,
    best_label: str | None,
    base_label: str | None,
    diff: SeedInterval | None,
    draws: int,
    test_rows: int,
) -> str:
    """The verdict on the winner against the baseline, and how the comparison was made."""
    seeds = max((int(v) for v in table["seeds"].drop_nulls()), default=0)
    calibration = (
        f"held-out validation ECE/base rate <= {tc.max_relative_ece:g}, log-loss skill > "
        f"{tc.min_log_loss_skill:g} and Brier skill > {tc.min_brier_skill:g} against the "
        "base-rate predictor" + (f", ECE <= {tc.max_ece:g}" if tc.max_ece is not None else "")
    )
    if best_label is None:
        text = (
            f"No configuration met the calibration bounds ({calibration}), so none is recommended."
        )
    elif base_label is None:
        text = f"{best_label} wins on validation {metric_name}; the baseline did not finish."
    else:
        base_value = float(table.filter(pl.col("is_baseline"))["test_objective"].item())
        text = verdict(
            metric_name=f"test {metric_name}",
            best=best_label,
            baseline=base_label,
            diff=diff if diff is not None else SeedInterval(0.0, 0.0, 0.0, tc.ci_level),
            baseline_value=base_value,
        )
    unit = "users" if tc.cluster_by_user or tc.objective in LIST_OBJECTIVES else "rows"
    fewest = min((int(v) for v in table["seeds"].drop_nulls()), default=0)
    noise = (
        "the spread between seeds"
        if fewest >= 2
        else "the spread between seeds where a configuration has two or more (those with "
        "one seed carry test-sample noise only; set tune.seeds >= 2)"
    )
    return text + (
        f" Objective: {metric_name}. {_fairness(tc, draws)} Each configuration was trained "
        f"with up to {seeds} seed(s); configurations were selected on seed-averaged validation "
        f"{metric_name} among those with {calibration}. Intervals ({tc.ci_level:.0%}) combine "
        f"{noise} with {tc.bootstrap_samples} bootstrap rounds over test {unit} "
        f"({test_rows} rows), paired with the baseline."
    )


def _objective(board: pl.DataFrame, trial_id: str) -> float:
    value = board.filter(pl.col("trial_id") == trial_id)["objective"].item()
    return float(value) if value is not None else float("-inf")
