"""Small helpers for self-contained HTML reports: inline PNG plots, tables, one page."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["figure", "img_tag", "page", "table"]

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2433;"
    "padding:0 1rem}h1{font-size:1.6rem}"
    "h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde}"
    "table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}"
    "td,th{border:1px solid #dde;padding:.25rem .6rem;text-align:right}th{background:#f3f5fa}"
    "td:first-child,th:first-child,td:last-child,th:last-child{text-align:left}"
    ".ok{color:#1a7f37}.bad{color:#c62828;font-weight:600}.warn{color:#b26a00}"
    "img{max-width:100%}.muted{color:#667}"
)


def figure(width: float = 6.0, height: float = 3.5) -> Figure:
    """Return a new matplotlib figure drawn with the non-interactive Agg backend."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def img_tag(fig: Figure, *, alt: str) -> str:
    """Render ``fig`` as an inline PNG ``<img>`` tag (the report stays one file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table(frame: pl.DataFrame, *, float_digits: int = 4) -> str:
    """Render a small frame as an HTML table."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.iter_rows():
        cells = []
        for v in row:
            text = f"{v:.{float_digits}g}" if isinstance(v, float) else str(v)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def page(title: str, sections: Sequence[tuple[str, str]], *, subtitle: str = "") -> str:
    """Assemble a standalone HTML page from (heading, html body) sections."""
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    sub = f'<p class="muted">{html.escape(subtitle)}</p>' if subtitle else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{sub}{body}</body></html>"
    )
