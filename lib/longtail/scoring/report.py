"""The scoring report: coverage, tail share, score distribution, users per fallback."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from longtail import schema as S
from longtail.io import write_json
from longtail.paths import ScoringReport
from longtail.reporting import Headline, figure, headline, img_tag, page, table

__all__ = ["catalog_size", "scoring_summary", "write_scoring_report"]


def catalog_size(events: pl.DataFrame, items: pl.DataFrame, *, as_of: dt.datetime) -> int:
    """Items that could have been recommended: the item table's and those seen before ``as_of``.

    An events-only source without a category or price for an item gives it no item
    row, yet candidates come from the events too; the backtest's catalog is the same
    union (:class:`longtail.backtest.baselines` inputs).
    """
    seen = events.filter(pl.col(S.EVENT_TIME) < as_of).get_column(S.ITEM_ID)
    return pl.concat([items.get_column(S.ITEM_ID), seen]).n_unique()


def _mean(series: pl.Series) -> float:
    value = series.cast(pl.Float64).mean()
    return float(value) if isinstance(value, (int, float)) else 0.0


def scoring_summary(
    recs: pl.DataFrame, *, user_types: pl.DataFrame, catalog_size: int
) -> dict[str, Any]:
    """Summarize one date's lists.

    Parameters
    ----------
    recs
        Lists with ``user_id, item_id, probability`` and ``item_popularity_bucket``.
    user_types
        ``user_id, fallback`` per expected user.
    catalog_size
        Items that could have been recommended.
    """
    per_user_tail = recs.group_by(S.USER_ID).agg(
        (pl.col(S.POPULARITY_BUCKET) == "tail").mean().alias("tail_share")
    )
    p = recs[S.PROBABILITY].to_numpy()
    quantiles = (
        {f"p{q}": float(np.quantile(p, q / 100)) for q in (1, 10, 50, 90, 99)} if p.size else {}
    )
    return {
        "users": int(recs[S.USER_ID].n_unique()),
        "rows": recs.height,
        "catalog_coverage": recs[S.ITEM_ID].n_unique() / max(catalog_size, 1),
        "distinct_items": int(recs[S.ITEM_ID].n_unique()),
        "tail_share": _mean(recs[S.POPULARITY_BUCKET] == "tail"),
        "bucket_share": {b: _mean(recs[S.POPULARITY_BUCKET] == b) for b in S.BUCKETS},
        "mean_tail_share_per_list": _mean(per_user_tail["tail_share"]),
        "probability_mean": float(p.mean()) if p.size else None,
        "probability_quantiles": quantiles,
        "users_per_fallback": dict(
            user_types.group_by("fallback").len().sort("fallback").iter_rows()
        ),
    }


def _headline(summary: dict[str, Any]) -> str:
    users, coverage, tail = summary["users"], summary["catalog_coverage"], summary["tail_share"]
    numbers = [
        Headline("users with a list", f"{users:,}", f"{summary['rows']:,} recommendations"),
        Headline("catalogue coverage", f"{coverage:.1%}", "of items appear in some list"),
        Headline("long-tail share", f"{tail:.1%}", "of listed items are tail items"),
    ]
    sentence = (
        f"{users:,} users got a ranked list; together the lists use {coverage:.0%} of the "
        f"catalogue, and {tail:.0%} of what they show comes from the long tail (items "
        "outside the most popular head and torso), so the lists are not just the bestsellers."
    )
    return headline(numbers, sentence)


def write_scoring_report(
    recs: pl.DataFrame, summary: dict[str, Any], out_dir: Path, *, title: str
) -> Path:
    """Write ``scoring_report.json`` and ``scoring_report.html`` (with plots) into ``out_dir``."""
    files = ScoringReport(out_dir)
    write_json(summary, files.summary)
    fig = figure(11, 3.6)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ax1.hist(recs[S.PROBABILITY].to_numpy(), bins=40, color="#3b6fb6")
    ax1.set(title="calibrated probability", xlabel="p", ylabel="rows", yscale="log")
    shares = recs.group_by(S.USER_ID).agg((pl.col(S.POPULARITY_BUCKET) == "tail").mean().alias("s"))
    ax2.hist(shares["s"].to_numpy(), bins=20, color="#7a4fb5")
    ax2.set(title="tail share per list", xlabel="share", ylabel="users")
    b = summary["bucket_share"]
    ax3.bar(list(b), list(b.values()), color=["#c0392b", "#e6a23c", "#2e8b57"])
    ax3.set(title="listed items by popularity", ylabel="share of listed items")
    fallback = pl.DataFrame(
        {
            "fallback": list(summary["users_per_fallback"]),
            "users": list(summary["users_per_fallback"].values()),
        }
    )
    mean_p = summary["probability_mean"]
    summary_rows = pl.DataFrame(
        {
            "metric": ["users", "rows", "catalog coverage", "distinct items", "tail share",
                       "mean probability"],
            "value": [
                str(summary["users"]), str(summary["rows"]), f"{summary['catalog_coverage']:.1%}",
                str(summary["distinct_items"]), f"{summary['tail_share']:.1%}",
                f"{mean_p:.4f}" if mean_p is not None else "-",
            ],
        }
    )  # fmt: skip
    html_text = page(
        title,
        lead=_headline(summary),
        sections=[
            ("Summary", table(summary_rows)),
            ("Distributions", img_tag(fig, alt="score and tail share distributions")),
            ("Users per fallback", table(fallback)),
        ],
    )
    files.page.write_text(html_text, encoding="utf-8")
    return files.page
