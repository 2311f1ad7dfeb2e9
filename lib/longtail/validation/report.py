"""The imbalance report: numbers as a JSON-ready dict, and one self-contained HTML page.

The page embeds its plots as PNG data URIs (Lorenz curve, label rate per
popularity bucket and per category, history across runs), so it renders from
any folder, offline, without the Data Docs beside it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import matplotlib
from markupsafe import Markup

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from longtail import schema as S
from longtail.reporting import Headline, headline, render
from longtail.validation import imbalance as M

__all__ = ["imbalance_summary", "render_html"]

_LORENZ_POINTS: Final = 201


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


def _lorenz_points(counts: pl.Series) -> dict[str, list[float]]:
    curve = M.lorenz_curve(counts)
    if curve.height > _LORENZ_POINTS:
        step = (curve.height - 1) / (_LORENZ_POINTS - 1)
        idx = sorted({round(i * step) for i in range(_LORENZ_POINTS)})
        curve = curve[idx]
    return {c: [round(float(v), 6) for v in curve[c]] for c in curve.columns}


def _latest_category(items: pl.DataFrame) -> pl.DataFrame:
    return (
        items.sort(S.VALID_FROM)
        .group_by(S.ITEM_ID)
        .agg(pl.col(S.CATEGORY_ID).drop_nulls().last())
        .select(S.ITEM_ID, S.CATEGORY_ID)
    )


def _events_section(
    events: pl.DataFrame,
    items: pl.DataFrame | None,
    *,
    target_event: str,
    top: int,
    head_share: float,
    torso_share: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    catalogue = items[S.ITEM_ID] if items is not None else None
    popularity = M.item_popularity(events, catalogue=catalogue)
    buckets = M.popularity_buckets(popularity, head_share=head_share, torso_share=torso_share)
    enriched = events.join(buckets, on=S.ITEM_ID, how="left")
    if items is not None:
        enriched = enriched.join(_latest_category(items), on=S.ITEM_ID, how="left")
    views = events.filter(pl.col(S.EVENT_TYPE) == "view").height
    positives = events.filter(pl.col(S.EVENT_TYPE) == target_event).height
    no_pos, users = M.users_without_positive(events, positive=pl.col(S.EVENT_TYPE) == target_event)
    section: dict[str, Any] = {
        "rows": events.height,
        "views": views,
        "positives": positives,
        "target_event": target_event,
        "label_rate": M.event_label_rate(events, target_event=target_event),
        "by_bucket": _records(
            M.event_label_rate_by(enriched, by=S.POPULARITY_BUCKET, target_event=target_event)
        ),
        "users": users,
        "users_without_positive": no_pos,
        "users_without_positive_share": no_pos / users if users else None,
    }
    if items is not None:
        section["by_category"] = _records(
            M.event_label_rate_by(enriched, by=S.CATEGORY_ID, target_event=target_event, top=top)
        )
    counts = popularity["events"]
    positive_items = bool(counts.sum())
    popularity_section: dict[str, Any] = {
        "items": counts.len(),
        "items_with_events": int((counts > 0).sum()),
        "gini": M.gini(counts) if positive_items else None,
        "top_1pct_share": M.top_share(counts, fraction=0.01) if positive_items else None,
        "top_10pct_share": M.top_share(counts, fraction=0.10) if positive_items else None,
        "lorenz": _lorenz_points(counts) if positive_items else None,
        "buckets": _records(buckets.group_by(S.POPULARITY_BUCKET).len().sort(S.POPULARITY_BUCKET)),
    }
    return section, popularity_section


def _has(frame: pl.DataFrame, columns: list[str]) -> bool:
    return all(c in frame.columns for c in columns)


def _mean(values: pl.Series) -> float | None:
    mean = values.cast(pl.Float64).mean()
    return float(mean) if isinstance(mean, (int, float)) else None


def _training_section(splits: Mapping[str, pl.DataFrame], *, top: int) -> dict[str, Any]:
    rows = pl.concat(
        [
            f.select(S.USER_ID, S.LABEL, S.ITEM_CATEGORY, S.POPULARITY_BUCKET)
            for f in splits.values()
        ]
    )
    by_split = [
        {
            "split": name,
            "rows": frame.height,
            "positives": int(frame[S.LABEL].sum() or 0),
            "label_rate": _mean(frame[S.LABEL]),
        }
        for name, frame in splits.items()
    ]
    no_pos, users = M.users_without_positive(rows, positive=pl.col(S.LABEL) == 1)
    return {
        "rows": rows.height,
        "positives": int(rows[S.LABEL].sum() or 0),
        "label_rate": _mean(rows[S.LABEL]),
        "by_split": by_split,
        "by_category": _records(M.training_label_rate_by(rows, by=S.ITEM_CATEGORY, top=top)),
        "by_bucket": _records(M.training_label_rate_by(rows, by=S.POPULARITY_BUCKET)),
        "users": users,
        "users_without_positive": no_pos,
        "users_without_positive_share": no_pos / users if users else None,
    }


def imbalance_summary(
    *,
    events: pl.DataFrame | None,
    items: pl.DataFrame | None,
    training: Mapping[str, pl.DataFrame],
    target_event: str,
    top_categories: int,
    head_share: float,
    torso_share: float,
    embargo: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Compute the imbalance report of what is there.

    Parameters
    ----------
    events, items
        Canonical tables, or None when absent.
    training
        Split name -> labelled rows; empty when there is no training set yet.
    target_event
        The event that counts as a positive in canonical events.
    top_categories
        Categories shown one by one; the rest are pooled as ``other``.
    head_share, torso_share
        Popularity bucket thresholds used for canonical events.
    embargo
        The training set's embargo counts (``embargo`` of
        ``reports/training_set_summary.json``), shown under ``training``.

    Returns
    -------
    dict
        ``events`` (label rate overall, per category and bucket, users without a
        positive), ``popularity`` (Gini, Lorenz curve, top 1% and 10% shares) and
        ``training`` (label rate overall, per split, category and bucket); a
        section is absent when its tables are.
    """
    out: dict[str, Any] = {}
    # The suites report missing columns; the report leaves out what it cannot compute.
    skipped = []
    if events is not None and not _has(events, [S.ITEM_ID, S.USER_ID, S.EVENT_TYPE]):
        skipped.append("events: lacks item_id, user_id or event_type")
        events = None
    if items is not None and not _has(items, [S.ITEM_ID, S.VALID_FROM, S.CATEGORY_ID]):
        items = None
    needed = [S.USER_ID, S.LABEL, S.ITEM_CATEGORY, S.POPULARITY_BUCKET]
    if any(not _has(frame, needed) for frame in training.values()):
        skipped.append(f"training: a split lacks one of {needed}")
        training = {}
    if skipped:
        out["skipped"] = skipped
    if events is not None:
        out["events"], out["popularity"] = _events_section(
            events,
            items,
            target_event=target_event,
            top=top_categories,
            head_share=head_share,
            torso_share=torso_share,
        )
    if training:
        out["training"] = _training_section(training, top=top_categories)
        out["training"]["embargo"] = list(embargo or [])
    return out


# --------------------------------------------------------------------------- HTML


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _bar(rows: list[dict[str, Any]], *, key: str, title: str) -> str | None:
    rows = [r for r in rows if r.get("label_rate") is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar([str(r[key]) for r in rows], [r["label_rate"] for r in rows], color="#4878a8")
    ax.set_title(title)
    ax.set_ylabel("label rate")
    ax.tick_params(axis="x", labelrotation=45)
    return _png(fig)


def _plots(summary: Mapping[str, Any], history: list[dict[str, Any]]) -> dict[str, str]:
    plots: dict[str, str] = {}
    lorenz = summary.get("popularity", {}).get("lorenz")
    if lorenz:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(lorenz["item_share"], lorenz["event_share"], label="items")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="equality")
        ax.set_xlabel("share of items (least popular first)")
        ax.set_ylabel("share of events")
        ax.set_title(f"Lorenz curve, Gini {summary['popularity']['gini']:.3f}")
        ax.legend()
        plots["lorenz"] = _png(fig)
    section = summary.get("training") or summary.get("events") or {}
    for key, by in (("by_bucket", S.POPULARITY_BUCKET), ("by_category", None)):
        column = by or (S.ITEM_CATEGORY if "training" in summary else S.CATEGORY_ID)
        png = _bar(section.get(key, []), key=column, title=f"label rate {key.replace('_', ' ')}")
        if png:
            plots[key] = png
    dated = [h for h in history if h.get("metrics")]
    if dated:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3))
        dates = [h["date"] for h in dated]
        for name in sorted({k for h in dated for k in h["metrics"] if k.endswith("_label_rate")}):
            ax1.plot(dates, [h["metrics"].get(name) for h in dated], marker="o", label=name)
        ax1.set_title("label rate per run")
        ax1.legend(fontsize=7)
        ax2.plot(dates, [h["metrics"].get("item_gini") for h in dated], marker="o", color="#a84848")
        ax2.set_title("item popularity Gini per run")
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", labelrotation=45)
        plots["history"] = _png(fig)
    return plots


def _share(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "n/a"


def _headline(summary: Mapping[str, Any]) -> str:
    """Label rate, item popularity Gini and users without a positive, and what they mean."""
    training, events = summary.get("training"), summary.get("events")
    section = training or events or {}
    rate = section.get("label_rate")
    if training:
        what, one = "training rows that are positive", "training row"
        rare = "is a positive"
    elif events:
        target = events["target_event"]
        what, one, rare = f"views followed by a {target}", "view", f"is followed by a {target}"
    else:
        what, one, rare = "no table yet", "", ""
    popularity = summary.get("popularity") or {}
    gini = popularity.get("gini")
    no_pos = section.get("users_without_positive_share")
    numbers = [
        Headline("label rate", _share(rate), what),
        Headline("item popularity Gini", f"{gini:.3f}" if gini is not None else "n/a",
                 "0 = all items equally popular, 1 = one item gets all"),
        Headline("users without a positive", _share(no_pos), "no positive for them in this data"),
    ]  # fmt: skip
    parts = []
    if isinstance(rate, (int, float)) and rate > 0:
        parts.append(f"About 1 {one} in {round(1 / rate):,} {rare}")
    if gini is not None:
        parts.append(
            f"the top 10% of items take {_share(popularity.get('top_10pct_share'))} of the "
            f"events (Gini {gini:.2f}), so most items sit in a long tail with little data"
        )
    if parts:
        text = "; ".join(parts)
        sentence = (
            text[0].upper()
            + text[1:]
            + (". This is the imbalance the resampling, losses and calibration have to handle.")
        )
    else:
        sentence = "No events or training rows were there to measure."
    return headline(numbers, sentence)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_html(
    path: Path,
    *,
    gate: Mapping[str, Any],
    summary: Mapping[str, Any],
    history: list[dict[str, Any]],
    docs_href: str | None,
) -> Path:
    """Write the project's validation report to ``path`` (one self-contained HTML file).

    Parameters
    ----------
    path
        Target file; its folder must exist (the caller writes into an atomic folder).
    gate
        The gate result as a dict (``GateResult.to_dict()``).
    summary
        :func:`imbalance_summary` output.
    history
        Run history records, oldest first, for the plots across runs.
    docs_href
        Relative link to the GE Data Docs index, or None.
    """
    drift = {k: v for k, v in gate.get("metrics", {}).items() if k.endswith("_drift")}
    html = render(
        "validation_report.html.j2",
        gate=gate,
        imb=summary,
        drift=drift,
        plots=_plots(summary, history),
        docs=docs_href,
        fmt=_fmt,
        lead=Markup(_headline(summary)),
    )
    path.write_text(html, encoding="utf-8")
    return path
