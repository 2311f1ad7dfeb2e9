"""Self-contained HTML reports rendered from the Jinja2 templates in ``longtail/templates/``.

Every page opens with its headline (:func:`headline`: the three numbers that matter
and a sentence saying what they mean), tables scroll sideways inside their own box
instead of running off the page, and plots are saved with their titles whole. The
markup lives in the template files; this module formats values and fills them in.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2
import polars as pl
from markupsafe import Markup

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Headline",
    "figure",
    "headline",
    "img_tag",
    "link_list",
    "macro",
    "page",
    "paragraph",
    "render",
    "table",
]

TEMPLATES: Final = Path(__file__).parent / "templates"
# Lenient undefined on purpose: templates test optional sections with `{% if summary.part %}`.
_ENV: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    keep_trailing_newline=True,
)


def render(template: str, **context: Any) -> str:
    """Render ``template`` (a file in ``longtail/templates/``) with ``context``, HTML-escaped.

    Values that are already HTML (a rendered table, a plot) are passed as
    :class:`markupsafe.Markup`; everything else is escaped.
    """
    return _ENV.get_template(template).render(**context)


def macro(template: str, name: str, *args: Any, **kwargs: Any) -> str:
    """Call the macro ``name`` of ``template`` (a small piece of a page) and return its HTML."""
    return str(getattr(_ENV.get_template(template).module, name)(*args, **kwargs))


def _fragment(name: str, *args: Any, **kwargs: Any) -> str:
    return macro("fragments.html.j2", name, *args, **kwargs)


@dataclass(frozen=True)
class Headline:
    """One number a reader should see first: a label, the value as shown, and a note."""

    label: str
    value: str
    note: str = ""


def headline(numbers: Sequence[Headline], sentence: str) -> str:
    """The opening of a report: the numbers in boxes, then one sentence on what they mean."""
    return render("headline.html.j2", numbers=numbers, sentence=sentence)


def figure(width: float = 6.0, height: float = 3.5) -> Figure:
    """Return a new matplotlib figure drawn with the non-interactive Agg backend."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def img_tag(fig: Figure, *, alt: str) -> str:
    """Render ``fig`` as an inline PNG ``<img>`` tag (the report stays one file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.1)  # titles never cut
    return _fragment("img", alt, base64.b64encode(buf.getvalue()).decode())


def paragraph(text: str, *, css_class: str = "", bold: bool = False) -> str:
    """One escaped paragraph of text, optionally with a CSS class or in bold."""
    return _fragment("paragraph", text, css_class=css_class, bold=bold)


def link_list(links: Sequence[tuple[str, str]], *, empty: str) -> str:
    """A list of (label, href) links, or the paragraph ``empty`` when there are none."""
    return _fragment("link_list", list(links), empty)


def _cell(value: object, float_digits: int) -> str:
    return f"{value:.{float_digits}g}" if isinstance(value, float) else str(value)


def table(frame: pl.DataFrame, *, float_digits: int = 4) -> str:
    """Render a small frame as an HTML table."""
    rows = [[_cell(v, float_digits) for v in row] for row in frame.iter_rows()]
    return render("table.html.j2", columns=frame.columns, rows=rows)


def page(
    title: str, sections: Sequence[tuple[str, str]], *, subtitle: str = "", lead: str = ""
) -> str:
    """Assemble a standalone HTML page from (heading, html body) sections.

    ``lead`` (usually :func:`headline`) comes right under the title, before any section.
    """
    return render(
        "page.html.j2",
        title=title,
        subtitle=subtitle,
        lead=Markup(lead),
        sections=[(heading, Markup(body)) for heading, body in sections],
    )
