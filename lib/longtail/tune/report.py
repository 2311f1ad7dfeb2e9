"""The tune report: one self-contained HTML page with the verdict, tables and plots.

Per-strategy plots show each strategy's best trial (by validation objective,
eligible or not) on the test split: PR curves, reliability diagrams, and PR-AUC
per popularity bucket; one scatter shows every trial's objective against its
training time. Reliability diagrams bin by equal mass (each point holds the same
number of test rows): at a base rate of a few percent, equal-width bins put nearly
every row in the first bin and draw three points.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_curve

from longtail.config import Config
from longtail.reporting import Headline, figure, headline, img_tag, page, table
from longtail.schema import BUCKETS, LABEL
from longtail.tune.leaderboard import Comparison, TrialOutcome
from longtail.tune.objective import PROBABILITY, objective_label

__all__ = ["best_per_strategy", "equal_mass_bins", "write_report"]

_SHOWN = (
    "rank",
    "label",
    "status",
    "learning_rate",
    "embedding_dim",
    "epochs_run",
    "objective",
    "val_ece_heldout",
    "test_pr_auc",
    "test_pr_auc_head",
    "test_pr_auc_tail",
    "test_ece",
    "total_seconds",
)


def best_per_strategy(board: pl.DataFrame) -> pl.DataFrame:
    """Each strategy's best trial with predictions (by validation objective), best first."""
    return (
        board.filter(pl.col("objective").is_not_null())
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


def equal_mass_bins(y: np.ndarray, p: np.ndarray, *, n_bins: int = 10) -> pl.DataFrame:
    """Reliability points of equal mass: rows sorted by probability, cut into ``n_bins`` runs.

    Returns
    -------
    pl.DataFrame
        One row per non-empty bin: ``count``, ``mean_probability``, ``positive_rate``.
    """
    if n_bins < 1:
        msg = f"n_bins must be >= 1. Got {n_bins!r} instead."
        raise ValueError(msg)
    order = np.argsort(p, kind="stable")
    parts = [part for part in np.array_split(order, min(n_bins, max(p.size, 1))) if part.size]
    return pl.DataFrame(
        {
            "count": [int(part.size) for part in parts],
            "mean_probability": [float(p[part].mean()) for part in parts],
            "positive_rate": [float(y[part].mean()) for part in parts],
        },
        schema={"count": pl.Int64, "mean_probability": pl.Float64, "positive_rate": pl.Float64},
    )


def _reliability(per: pl.DataFrame, outcomes: dict[str, TrialOutcome]) -> str:
    n = per.height
    cols = min(3, max(n, 1))
    rows = math.ceil(n / cols)
    fig = figure(3.2 * cols, 2.8 * rows)
    for i, row in enumerate(per.iter_rows(named=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        test = outcomes[row["trial_id"]].split("test")
        y = test[LABEL].cast(pl.Float64).to_numpy()
        bins = equal_mass_bins(y, test[PROBABILITY].cast(pl.Float64).to_numpy(), n_bins=10)
        highest = bins.select(pl.max_horizontal("mean_probability", "positive_rate").max()).item()
        top = max(float(highest or 0.0), 1e-3) * 1.1
        ax.plot([0, top], [0, top], color="#999", lw=0.8, ls="--")
        ax.plot(bins["mean_probability"], bins["positive_rate"], lw=1, marker="o", ms=4)
        ax.set(xlim=(0, top), ylim=(0, top), title=f"{row['label']}\nECE {row['test_ece']:.4f}")
        ax.title.set_fontsize(8)
        ax.set_xlabel("mean predicted", fontsize=7)
        ax.set_ylabel("observed rate", fontsize=7)
    note = (
        "<p class='muted'>Each point is one tenth of the test rows, sorted by calibrated "
        "probability: its mean predicted probability against its observed positive rate. "
        "On the dashed line, predictions mean what they say.</p>"
    )
    return note + img_tag(fig, alt="reliability diagrams per strategy")


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


def _test_value(board: pl.DataFrame, trial_id: str | None) -> tuple[str, str]:
    """(label, test objective as text) of a trial on the board."""
    if trial_id is None or "test_objective" not in board.columns:
        return "none", "n/a"
    row = board.filter(pl.col("trial_id") == trial_id)
    if not row.height or row["test_objective"][0] is None:
        return "none", "n/a"
    return str(row["label"][0]), f"{float(row['test_objective'][0]):.4f}"


def _headline(board: pl.DataFrame, comparison: Comparison, metric_name: str) -> str:
    best_label, best = _test_value(board, comparison.best_trial)
    base_label, base = _test_value(board, comparison.baseline_trial)
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
    intervals = board.filter(pl.col("test_objective").is_not_null()).select(
        "rank",
        "label",
        "is_baseline",
        "objective",
        "test_objective",
        "test_objective_low",
        "test_objective_high",
        "diff_vs_baseline",
        "diff_low",
        "diff_high",
        "beyond_noise",
    )
    shown = board.select([c for c in _SHOWN if c in board.columns])
    sections = [
        ("Verdict", f"<p>{html.escape(comparison.verdict)}</p>"),
        (
            f"Test intervals ({cfg.tune.ci_level:.0%}): best trials and the baseline",
            table(intervals),
        ),
        (
            "Leaderboard",
            f"<p class='muted'>objective: validation {html.escape(metric_name)}; eligible "
            f"when held-out validation ECE &le; {cfg.tune.max_ece:g}. All columns are in "
            "leaderboard.csv.</p>" + table(shown),
        ),
    ]
    if per.height:
        sections += [
            ("PR curves per strategy", _pr_curves(per, by_id)),
            ("Reliability diagrams (calibrated, test)", _reliability(per, by_id)),
            ("Head / torso / tail", _bucket_bars(per)),
            ("Objective against training time", _time_scatter(board, metric_name)),
        ]
    text = page(
        "Imbalance strategies: tune leaderboard",
        sections,
        subtitle=f"run {run_dir.name}; {board.height} trials; objective {metric_name}",
        lead=_headline(board, comparison, metric_name),
    )
    path = run_dir / "report.html"
    tmp = run_dir / ".report.html.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
