"""The backtest report: the verdict, the comparison table, and where the lists differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from longtail import schema as S
from longtail.io import write_text
from longtail.reporting import Headline, figure, headline, img_tag, page, paragraph, table

__all__ = ["best_baseline", "write_backtest_report"]

_ACCURACY = ("recall_at_k", "ndcg_at_k", "hit_rate_at_k", "map_at_k", "tail_recall_at_k")
_BEYOND = ("catalog_coverage", "aplt", "arp", "exposure_gini", "novelty", "mean_list_length")
_COLORS = {
    "model": "#1d4ed8",
    "popular": "#c0392b",
    "category_popular": "#e6a23c",
    "recent": "#2e8b57",
    "random": "#8a8f98",
}


def _color(name: str) -> str:
    return _COLORS.get(name, "#7a4fb5")


def _systems_table(metrics: dict[str, Any], names: tuple[str, ...]) -> str:
    systems = metrics["systems"]
    k = metrics["k"]
    rows = {"system": list(systems)}
    for name in names:
        rows[name.replace("_at_k", f"@{k}")] = [float(systems[s][name]) for s in systems]
    return table(pl.DataFrame(rows), float_digits=3)


def _comparison_table(metrics: dict[str, Any]) -> str:
    k = metrics["k"]
    rows: list[dict[str, Any]] = []
    for name, by_metric in metrics["vs_baseline"].items():
        for metric, iv in by_metric.items():
            beyond = iv["low"] > 0 or iv["high"] < 0
            rows.append(
                {
                    "baseline": name,
                    "metric": metric.replace("_at_k", f"@{k}"),
                    "model - baseline": iv["diff"],
                    "95% low": iv["low"],
                    "95% high": iv["high"],
                    "verdict": ("better" if iv["low"] > 0 else "worse") if beyond else "noise",
                }
            )
    return table(pl.DataFrame(rows), float_digits=3)


def _plots(metrics: dict[str, Any]) -> str:
    k = metrics["k"]
    fig = figure(11, 3.4)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for name, curve in metrics["recall_curves"].items():
        ax1.plot(np.arange(1, len(curve) + 1), curve, label=name, color=_color(name), lw=2)
    ax1.set(title=f"recall@k, k = 1..{k}", xlabel="k", ylabel="recall")
    ax1.legend(fontsize=8)
    names = list(metrics["recall_by_bucket"])
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        vals = [metrics["recall_by_bucket"][name][b] for b in S.BUCKETS]
        ax2.bar(
            np.arange(3) + i * width, np.nan_to_num(vals), width, color=_color(name), label=name
        )
    ax2.set_xticks(np.arange(3) + 0.4 - width / 2, list(S.BUCKETS))
    ax2.set(title=f"recall@{k} by popularity bucket", ylabel="recall of truth pairs")
    systems = metrics["systems"]
    xs = np.arange(len(systems))
    cov = [systems[s]["catalog_coverage"] for s in systems]
    gin = [systems[s]["exposure_gini"] for s in systems]
    ax3.bar(xs - 0.2, cov, 0.4, color="#3b6fb6", label="catalog coverage")
    ax3.bar(xs + 0.2, np.nan_to_num(gin), 0.4, color="#c0392b", label="exposure Gini")
    ax3.set_xticks(xs, list(systems), rotation=30, ha="right", fontsize=8)
    ax3.set(title="coverage and exposure", ylim=(0, 1))
    ax3.legend(fontsize=8)
    out = img_tag(fig, alt="recall curves, recall by bucket, coverage and exposure")
    cand = metrics.get("candidate_recall") or {}
    if cand:
        fig2 = figure(6, 2.8)
        ax = fig2.subplots()
        keys = [c for c in cand if c != "all"]
        ax.bar(keys, [cand[c] for c in keys], color="#3b6fb6")
        ax.axhline(
            cand["all"], color="#1d2433", ls="--", lw=1, label=f"all sources {cand['all']:.3f}"
        )
        ax.set(title="share of truth pairs among the candidates, by source", ylabel="share")
        ax.legend(fontsize=8)
        out += img_tag(fig2, alt="candidate recall by source")
    return out


def best_baseline(metrics: dict[str, Any]) -> tuple[str, float]:
    """The baseline with the highest recall@k in a backtest's ``metrics.json``, and that recall."""
    systems = {n: v for n, v in metrics["systems"].items() if n != "model"}
    best = max(systems, key=lambda n: systems[n]["recall_at_k"])
    return best, float(systems[best]["recall_at_k"])


def write_backtest_report(metrics: dict[str, Any], path: Path) -> Path:
    """Write the backtest's HTML report (one self-contained file) to ``path``."""
    k = metrics["k"]
    model = metrics["systems"]["model"]
    cand = (metrics.get("candidate_recall") or {}).get("all", float("nan"))
    lead = headline(
        [
            Headline(
                f"model recall@{k}",
                f"{model['recall_at_k']:.3f}",
                "best baseline: {} {:.3f}".format(*best_baseline(metrics)),
            ),
            Headline(f"model NDCG@{k}", f"{model['ndcg_at_k']:.3f}"),
            Headline(
                f"model tail recall@{k}",
                f"{model['tail_recall_at_k']:.3f}",
                f"popular: {metrics['systems']['popular']['tail_recall_at_k']:.3f}",
            ),
        ],
        f"{metrics['verdict']} Recall@{k} is the share of a user's next "
        f"{metrics['target_event']}s (over {metrics['holdout_days']} days) that were on the "
        f"list served at the cutoff, averaged over the {metrics['users_evaluated']} users "
        f"who had one; candidate recall, the ceiling of any ranker, is {cand:.3f}.",
    )
    setup = table(
        pl.DataFrame(
            {
                "key": [
                    "date", "cutoff", "holdout_days", "target_event", "users_served",
                    "users_with_truth", "users_without_list", "users_evaluated", "target_pairs",
                    "tail_target_pairs", "catalog_size", "model_version", "bootstrap_rounds",
                ],
                "value": [
                    str(metrics[key]) for key in (
                        "date", "cutoff", "holdout_days", "target_event", "users_served",
                        "users_with_truth", "users_without_list", "users_evaluated",
                        "target_pairs", "tail_target_pairs", "catalog_size", "model_version",
                        "bootstrap_rounds",
                    )
                ],
            }
        )
    )  # fmt: skip
    sections = [
        ("Verdict", paragraph(metrics["verdict"], bold=True)),
        ("Accuracy on the same users", _systems_table(metrics, _ACCURACY)),
        ("Model minus each baseline (paired bootstrap over users)", _comparison_table(metrics)),
        ("Popularity bias and exposure (all lists written)", _systems_table(metrics, _BEYOND)),
        ("Plots", _plots(metrics)),
        ("Setup", setup),
    ]
    text = page(
        f"Backtest {metrics['date']}",
        sections,
        lead=lead,
        subtitle=(
            f"Lists built from events before {metrics['cutoff']}, compared with "
            f"{metrics['target_event']} events up to {metrics['holdout_end']}."
        ),
    )
    return write_text(text, path)
