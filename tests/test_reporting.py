from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl
import pytest

from longtail.reporting import TEMPLATES, Headline, headline, link_list, page, paragraph, table

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]


def test_page_escapes_text_and_keeps_the_html_it_is_given() -> None:
    body = table(pl.DataFrame({"name": ["<b>x</b>"], "value": [0.123456]})) + paragraph("a & b")
    html = page(
        "T <1>",
        [("Section <2>", body)],
        subtitle="sub & title",
        lead=headline([Headline("rate", "3%", "of <rows>")], 'a "quoted" sentence'),
    )
    assert html.startswith("<!doctype html>")
    assert "<title>T &lt;1&gt;</title>" in html and "<h2>Section &lt;2&gt;</h2>" in html
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in html and "<td>0.1235</td>" in html
    assert "<p>a &amp; b</p>" in html and 'id="headline"' in html
    assert "of &lt;rows&gt;" in html and ".headline{" in html  # the shared stylesheet included


def test_link_list_says_when_there_is_nothing_to_link() -> None:
    assert link_list([("Report", "a/b.html")], empty="none") == (
        '<ul><li><a href="a/b.html">Report</a></li></ul>'
    )
    assert link_list([], empty="none yet") == "<p>none yet</p>"


def test_every_template_ships_with_the_package() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["longtail"]
    assert "templates/*" in data
    assert {p.name for p in TEMPLATES.iterdir()} >= {"page.html.j2", "validation_report.html.j2"}
