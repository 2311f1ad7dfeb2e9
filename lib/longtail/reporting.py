"""Small helpers for self-contained HTML reports: inline PNG plots, tables, one page.

Every page opens with its headline (:func:`headline`: the three numbers that matter
and a sentence saying what they mean), tables scroll sideways inside their own box
instead of running off the page, and plots are saved with their titles whole.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CSS", "HEADLINE_CSS", "Headline", "figure", "headline", "img_tag", "page", "table"]

# The headline boxes, shared with pages that bring their own stylesheet.
HEADLINE_CSS = (
    ".headline{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0 .5rem}"
    ".headline div{border:1px solid #dde;border-radius:6px;padding:.6rem 1rem;min-width:12rem;"
    "background:#f8f9fc}.headline b{display:block;font-size:1.7rem}"
    ".headline span{color:#556;font-size:.85rem}.lead{font-size:1.05rem;max-width:60rem}"
)
CSS = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2433;"
    "padding:0 1rem}h1{font-size:1.6rem}"
    "h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde}"
    "table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}"
    "td,th{border:1px solid #dde;padding:.25rem .6rem;text-align:right}th{background:#f3f5fa}"
    "td:first-child,th:first-child,td:last-child,th:last-child{text-align:left}"
    ".ok{color:#1a7f37}.bad{color:#c62828;font-weight:600}.warn{color:#b26a00}"
    "img{max-width:100%}.muted{color:#667}"
    ".scroll{overflow-x:auto;max-width:100%}.scroll table{margin:0}"
    "td{overflow-wrap:break-word;max-width:36rem}" + HEADLINE_CSS
)


@dataclass(frozen=True)
class Headline:
    """One number a reader should see first: a label, the value as shown, and a note."""

    label: str
    value: str
    note: str = ""


def headline(numbers: Sequence[Headline], sentence: str) -> str:
    """The opening of a report: the numbers in boxes, then one sentence on what they mean."""
    boxes = "".join(
        f"<div><span>{html.escape(n.label)}</span><b>{html.escape(n.value)}</b>"
        f"<span>{html.escape(n.note)}</span></div>"
        for n in numbers
    )
    return (
        f'<div class="headline" id="headline">{boxes}</div>'
        f'<p class="lead" id="headline-sentence">{html.escape(sentence)}</p>'
    )


def figure(width: float = 6.0, height: float = 3.5) -> Figure:
    """Return a new matplotlib figure drawn with the non-interactive Agg backend."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def img_tag(fig: Figure, *, alt: str) -> str:
    """Render ``fig`` as an inline PNG ``<img>`` tag (the report stays one file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.1)  # titles never cut
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
    body = "".join(rows)
    # Wide tables scroll inside their own box instead of running off the page.
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def page(
    title: str, sections: Sequence[tuple[str, str]], *, subtitle: str = "", lead: str = ""
) -> str:
    """Assemble a standalone HTML page from (heading, html body) sections.

    ``lead`` (usually :func:`headline`) comes right under the title, before any section.
    """
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    sub = f'<p class="muted">{html.escape(subtitle)}</p>' if subtitle else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{sub}{lead}{body}</body></html>"
    )
