"""The tune report: one self-contained HTML page with the verdict, tables and plots.

The configuration table and a forest plot give every strategy x loss's effect
against the baseline, per popularity bucket and on calibration, each with its
seed x test-user interval. Per-strategy plots show each strategy's best
selected trial (by validation objective, eligible or not) on the test split: PR
curves, reliability diagrams (equal-mass bins), and PR-AUC per popularity
bucket; one scatter shows every trial's objective against its training time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_curve

from longtail.config import Config
from longtail.io import write_text
from longtail.metrics import reliability_bins
from longtail.paths import TuneRun
from longtail.reporting import Headline, figure, headline, img_tag, macro, page, paragraph, table
from longtail.schema import BUCKETS, LABEL, PROBABILITY
from longtail.tune.leaderboard import EFFECTS, Comparison, TrialOutcome
from longtail.tune.objective import objective_label

__all__ = ["best_per_strategy", "write_report"]

_SHOWN = (
    "label",
    "selected",
    "eligible",
    "status",
    "draw",
    "seed",
    "learning_rate",
    "embedding_dim",
    "epochs_run",
    "objective",
    "heldout_relative_ece",
    "heldout_log_loss_skill",
    "test_pr_auc",
    "test_pr_auc_head",
    "test_pr_auc_tail",
    "test_ece",
    "total_seconds",
)


def _note(name: str, *args: object) -> str:
    return macro("tune_notes.html.j2", name, *args)


def best_per_strategy(board: pl.DataFrame) -> pl.DataFrame:
    """Each strategy's best selected trial (by validation objective), best first."""
    return (
        board.filter(pl.col("objective").is_not_null() & pl.col("selected"))
        .sort("objective", descending=True)
        .unique("strategy", keep="first", maintain_order=True)
    )


def _pr_curves(per: pl.DataFrame, outcomes: dict[str, TrialOutcome]) -> str:
    fig = figure(6.5, 4.0)
    ax = fig.add_subplot()
    for row in per.iter_rows(named=True):
        test = outcomes[row["trial_id"]].split("test")
        y = test[LABEL].to_numpy()
        if y.max() <= 0:
            continue
        precision, recall, _ = precision_recall_curve(y, test[PROBABILITY].to_numpy())
        ap = row["test_pr_auc"]
        ax.plot(recall, precision, label=f"{row['label']} (AP {ap:.3f})", lw=1.4)
    ax.set(xlabel="recall", ylabel="precision", title="PR curves on test (best trial per strategy)")
    ax.legend(fontsize=7)
    return img_tag(fig, alt="precision-recall curves per strategy")


def _reliability(per: pl.DataFrame, outcomes: dict[str, TrialOutcome]) -> str:
    n = per.height
    cols = min(3, max(n, 1))
    rows = math.ceil(n / cols)
    fig = figure(3.2 * cols, 2.8 * rows)
    for i, row in enumerate(per.iter_rows(named=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        test = outcomes[row["trial_id"]].split("test")
        bins = reliability_bins(test, n_bins=10, strategy="quantile")
        highest = bins.select(pl.max_horizontal("mean_probability", "positive_rate").max()).item()
        top = max(float(highest or 0.0), 1e-3) * 1.1
        ax.plot([0, top], [0, top], color="#999", lw=0.8, ls="--")
        ax.plot(bins["mean_probability"], bins["positive_rate"], lw=1, marker="o", ms=4)
        ax.set(xlim=(0, top), ylim=(0, top), title=f"{row['label']}\nECE {row['test_ece']:.4f}")
        ax.title.set_fontsize(8)
        ax.set_xlabel("mean predicted", fontsize=7)
        ax.set_ylabel("observed rate", fontsize=7)
    return _note("reliability") + img_tag(fig, alt="reliability diagrams per strategy")


def _bucket_bars(per: pl.DataFrame) -> str:
    fig = figure(7.0, 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(per.height, 1)
    x = np.arange(len(BUCKETS))
    for i, row in enumerate(per.iter_rows(named=True)):
        values = [row.get(f"test_pr_auc_{b}") for b in BUCKETS]
        heights = [float(v) if v is not None else 0.0 for v in values]
        ax.bar(x + i * width, heights, width, label=row["label"])
    ax.set_xticks(x + width * (per.height - 1) / 2, list(BUCKETS))
    ax.set(ylabel="test PR-AUC", title="PR-AUC by item popularity (best trial per strategy)")
    ax.legend(fontsize=7)
    return img_tag(fig, alt="head, torso and tail PR-AUC per strategy")


def _time_scatter(board: pl.DataFrame, metric_name: str) -> str:
    fig = figure(6.5, 3.8)
    ax = fig.add_subplot()
    scored = board.filter(pl.col("objective").is_not_null())
    for strategy in scored["strategy"].unique().sort().to_list():
        part = scored.filter(pl.col("strategy") == strategy)
        ax.scatter(part["total_seconds"], part["objective"], label=strategy, s=28)
    base = scored.filter(pl.col("is_baseline"))
    if base.height:
        ax.scatter(
            base["total_seconds"], base["objective"], marker="*", s=160, c="black", label="baseline"
        )
    ax.set(
        xlabel="trial time (s, resampling + training)",
        ylabel=f"validation {metric_name}",
        title="Objective against training time (every trial)",
    )
    ax.legend(fontsize=7)
    return img_tag(fig, alt="objective against training time")


def _test_value(configs: pl.DataFrame, label: str | None) -> tuple[str, str]:
    """(label, seed-averaged test objective as text) of a configuration."""
    if label is None or "test_objective" not in configs.columns:
        return "none", "n/a"
    row = configs.filter(pl.col("label") == label)
    if not row.height or row["test_objective"][0] is None:
        return "none", "n/a"
    return label, f"{float(row['test_objective'][0]):.4f}"


def _headline(board: pl.DataFrame, comparison: Comparison, metric_name: str) -> str:
    configs = comparison.configurations
    best_label, best = _test_value(configs, comparison.best_label)
    baseline = configs.filter(pl.col("is_baseline"))["label"] if configs.height else None
    base_label, base = _test_value(
        configs, str(baseline[0]) if baseline is not None and baseline.len() else None
    )
    diff = comparison.diff
    if diff is not None:
        third = Headline(
            "difference (best - baseline)",
            f"{diff.estimate:+.4f}",
            f"{diff.level:.0%} interval [{diff.low:+.4f}, {diff.high:+.4f}]",
        )
    else:
        third = Headline("difference (best - baseline)", "none", "the baseline is the best")
    numbers = [
        Headline(f"best on validation: test {metric_name}", best, best_label),
        Headline(f"baseline: test {metric_name}", base, base_label),
        third,
    ]
    # The verdict's first sentence; its details (selection rule, bootstrap) follow below.
    sentence = comparison.verdict.split(". ", 1)[0].rstrip(".") + "."
    if diff is not None:
        sentence += (
            " An interval that contains zero means the two cannot be told apart on this test "
            "set; the daily job adopts a winner only when the interval lies above zero."
        )
    return headline(numbers, sentence)


def _interval_text(row: dict[str, object], metric: str) -> str:
    est, low, high = (row.get(f"diff_{metric}{e}") for e in ("", "_low", "_high"))
    if not isinstance(est, float) or not isinstance(low, float) or not isinstance(high, float):
        return ""
    mark = " *" if low > 0 or high < 0 else ""
    return f"{est:+.4f} [{low:+.4f}, {high:+.4f}]{mark}"


def _effects(configs: pl.DataFrame) -> pl.DataFrame:
    """Per configuration: the difference to the baseline of each effect, as 'est [low, high]'."""
    rows = []
    for row in configs.filter(~pl.col("is_baseline")).iter_rows(named=True):
        out: dict[str, object] = {"rank": row["rank"], "label": row["label"]}
        out["objective"] = _interval_text(
            {
                "diff_objective": row["diff_vs_baseline"],
                "diff_objective_low": row["diff_low"],
                "diff_objective_high": row["diff_high"],
            },
            "objective",
        )
        for metric in EFFECTS:
            out[metric] = _interval_text(row, metric)
        rows.append(out)
    return pl.DataFrame(rows) if rows else pl.DataFrame({"label": []})


def _forest(configs: pl.DataFrame) -> str:
    """Differences to the baseline with intervals: tail/torso/head PR-AUC and log-loss skill."""
    others = configs.filter(~pl.col("is_baseline") & pl.col("diff_vs_baseline").is_not_null())
    panels = [f"pr_auc_{b}" for b in BUCKETS] + ["log_loss_skill"]
    height = max(2.5, 0.28 * others.height + 1.2)
    fig = figure(3.0 * len(panels), height)
    labels = others["label"].to_list()
    y = np.arange(len(labels))
    for i, metric in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        est = others[f"diff_{metric}"].fill_null(float("nan")).to_numpy()
        low = others[f"diff_{metric}_low"].fill_null(float("nan")).to_numpy()
        high = others[f"diff_{metric}_high"].fill_null(float("nan")).to_numpy()
        colors = ["#1a7f37" if lo > 0 else "#cf222e" if hi < 0 else "#57606a"
                  for lo, hi in zip(low, high, strict=True)]  # fmt: skip
        ax.hlines(y, low, high, colors=colors, lw=1)
        ax.scatter(est, y, c=colors, s=14, zorder=3)
        ax.axvline(0.0, color="#999", lw=0.8, ls="--")
        ax.set_yticks(y, labels if i == 0 else [""] * len(labels), fontsize=7)
        ax.set_title(f"{metric} vs baseline", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    return img_tag(fig, alt="effects against the baseline with intervals")


def write_report(
    run_dir: Path,
    board: pl.DataFrame,
    comparison: Comparison,
    outcomes: Sequence[TrialOutcome],
    cfg: Config,
) -> Path:
    """Write ``run_dir/report.html`` and return its path."""
    metric_name = objective_label(cfg.tune.objective, k=cfg.train.ranking_k)
    by_id = {o.trial_id: o for o in outcomes if o.predictions is not None}
    per = best_per_strategy(board.filter(pl.col("trial_id").is_in(list(by_id))))
    configs = comparison.configurations
    shown_configs = configs.select(
        "rank", "label", "eligible", "learning_rate", "embedding_dim", "seeds",
        "loss_weight_ratio", "objective", "objective_sd", "heldout_relative_ece",
        "heldout_log_loss_skill", "heldout_brier_skill", "test_objective", "test_objective_low",
        "test_objective_high", "diff_vs_baseline", "diff_low", "diff_high", "beyond_noise",
    )  # fmt: skip
    shown = board.select([c for c in _SHOWN if c in board.columns])
    level = f"{cfg.tune.ci_level:.0%}"
    sections = [
        ("Verdict", paragraph(comparison.verdict)),
        (
            f"Configurations (selected draw, seed-averaged; {level} intervals)",
            _note(
                "configurations",
                metric_name,
                cfg.tune.max_relative_ece,
                cfg.tune.min_log_loss_skill,
                cfg.tune.min_brier_skill,
            )
            + table(shown_configs),
        ),
        (
            "Which remedies help, which hurt, and what they cost in calibration",
            _note("effects", level) + table(_effects(configs)),
        ),
    ]
    if configs.filter(~pl.col("is_baseline") & pl.col("diff_vs_baseline").is_not_null()).height:
        sections.append(("Effects against the baseline", _forest(configs)))
    sections.append(
        (
            "Trials",
            _note("trials") + table(shown),
        )
    )
    if per.height:
        sections += [
            ("PR curves per strategy", _pr_curves(per, by_id)),
            ("Reliability diagrams (calibrated, test, equal-mass bins)", _reliability(per, by_id)),
            ("Head / torso / tail", _bucket_bars(per)),
            ("Objective against training time", _time_scatter(board, metric_name)),
        ]
    text = page(
        "Imbalance strategies: tune leaderboard",
        sections,
        subtitle=(
            f"run {run_dir.name}; {configs.height} configurations, {board.height} trials; "
            f"objective {metric_name}"
        ),
        lead=_headline(board, comparison, metric_name),
    )
    return write_text(text, TuneRun(run_dir).report)
