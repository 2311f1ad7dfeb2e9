"""Every page a run writes works offline and renders in a real headless Chromium.

The pages come from the tiny shop's two-day daily run (``two_days``) and one small
Ray Tune run on that shop's training splits. The browser runs with networking off
(no background, component or sync traffic; QUIC off), a fresh profile each time, and
``--virtual-time-budget`` so the pages' scripts (Data Docs build their tables in
JavaScript) have run before the DOM is dumped. Adding a report (the backtest's, once
the daily chain writes it) is one entry in ``PAGES``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from longtail.config import Config, config_from_dict
from longtail.paths import Layout, TuneRun
from longtail.validation.offline import remote_assets
from longtail.validation.sampling import SAMPLE_SUFFIX
from tests.e2e.conftest import D2
from tests.services import chromium

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STAGES = ("canonical", "features", "training")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=10000",
)  # fmt: skip


@dataclass(frozen=True)
class Pages:
    """Where the pages of the run are: its data directory and the tune run's folder."""

    data: Path
    tune_run: Path


@dataclass(frozen=True)
class Page:
    """A report: how to find it in a run, and what its rendered DOM must show."""

    name: str
    path: Callable[[Pages], Path]
    shows: tuple[str, ...]


def _scoring_report(pages: Pages) -> Path:
    # Found by name and date under reports/ (reports/scoring/date=D).
    every = (pages.data / "reports").rglob("*scoring_report*.html")
    found = sorted(p for p in every if str(D2) in str(p))
    assert found, "no scoring report for the run date"
    return found[0]


def _docs(pages: Pages, stage: str) -> Path:
    return Layout(pages.data).data_docs(stage).index


PAGES: tuple[Page, ...] = (
    Page(
        "run_report",
        lambda p: Layout(p.data).daily_run(D2).report,
        ('id="headline"', "model PR-AUC on test", "score", "Great Expectations Data Docs"),
    ),
    Page(
        "imbalance_report",
        lambda p: Layout(p.data).validation_report(D2, "canonical").page,
        ('id="headline"', "PASSED", "item popularity Gini", 'id="plot-lorenz"'),
    ),
    Page(
        "scoring_report",
        _scoring_report,
        ('id="headline"', "catalogue coverage", "Users per fallback"),
    ),
    Page(
        "tune_report",
        lambda p: TuneRun(p.tune_run).report,
        ('id="headline"', "Verdict", "Reliability diagrams", "Configurations", "Trials"),
    ),
    # The backtest report, once the daily chain writes it:
    # Page("backtest_report", lambda p: p.data / "backtest" / f"date={D2}" / "report.html",
    #      ('id="headline"', "recall")),
    *(
        Page(f"data_docs_{stage}", lambda p, s=stage: _docs(p, s), ("Validation Results",))
        for stage in STAGES
    ),
)  # fmt: skip


def _tune_cfg() -> Config:
    return config_from_dict(
        {
            "seed": 4,
            "train": {"epochs": 1, "batch_size": 256, "hash_buckets_user": 1_000,
                      "hash_buckets_item": 1_000},
            "tune": {"num_samples": 2, "time_budget_s": 240, "bootstrap_samples": 20,
                     "strategies": ["random_under"], "max_ece": 1.0, "embedding_dims": [8]},
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def pages(two_days: Path, ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Pages:
    """The run's pages, plus a tune report on a copy of the run's training splits."""
    from longtail.tune import run_tune

    # A copy: the daily job reads tune/best.json, and the run must stay as the job left it.
    layout = Layout(tmp_path_factory.mktemp("tune"))
    shutil.copytree(Layout(two_days).training, layout.training)
    run_tune(layout, _tune_cfg(), run_id="reports")
    return Pages(data=two_days, tune_run=layout.tune_run("reports").path)


def _html_files(pages: Pages) -> list[Path]:
    return sorted([*pages.data.rglob("*.html"), *pages.tune_run.rglob("*.html")])


_LOCAL_ASSET = re.compile(
    r"""<(?:link|script|img)\b[^>]*\b(?:href|src)\s*=\s*["']([^"'#?]+)""", re.IGNORECASE
)


def test_every_page_of_a_run_loads_its_stylesheets_scripts_and_images_locally(pages: Pages) -> None:
    files = _html_files(pages)
    # The run's own reports and Great Expectations' pages (an index, suites, results).
    assert len(files) >= 20, files
    remote = {str(f): remote_assets(f.read_text()) for f in files}
    assert {k: v for k, v in remote.items() if v} == {}
    # ...and every local one is there, at the relative path the page names.
    missing = [
        (str(f), ref)
        for f in files
        for ref in _LOCAL_ASSET.findall(f.read_text())
        if not ref.startswith("data:") and not (f.parent / ref).is_file()
    ]
    assert missing == []


def _browser(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip


def _non_white_share(png: Path) -> float:
    from matplotlib import image

    pixels = np.asarray(image.imread(png))[..., :3]
    return float((pixels.min(axis=-1) < 0.95).mean())


def _suites_of_the_run(data: Path, stage: str) -> set[str]:
    summary = Layout(data).validation_report(D2, stage).summary
    gate = json.loads(summary.read_text())["gate"]
    # A big table validated in two halves (longtail.validation.sampling) has two results.
    sampled = {f"{name}{SAMPLE_SUFFIX}" for name in gate.get("sampled", {})}
    return {o["suite"] for o in gate["outcomes"]} | sampled


def _results_table_suites(dom: str) -> set[str]:
    # Rows of the validation-results table link to validations/<suite>/<run>/<time>/...;
    # bootstrap-table builds them in the browser, so they exist only if the scripts ran.
    return set(re.findall(r'<tr class="clickable-row" data-href="validations/([^/"]+)/', dom))


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go (kept by pytest under its basetemp, for a person to open)."""
    return Path(os.environ.get("LONGTAIL_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_renders_in_headless_chromium(
    page: Page, pages: Pages, screenshots: Path, tmp_path: Path
) -> None:
    path = page.path(pages).resolve()
    assert path.is_file(), path
    dom = _browser("--dump-dom", path.as_uri(), profile=tmp_path / "profile").stdout
    for text in page.shows:
        assert text in dom, f"{page.name}: {text!r} not in the rendered page"
    if page.name.startswith("data_docs_"):
        stage = page.name.removeprefix("data_docs_")
        # The table of validation results lists every suite the gate ran, nothing else.
        assert _results_table_suites(dom) == _suites_of_the_run(pages.data, stage)
    screenshots.mkdir(parents=True, exist_ok=True)
    png = screenshots / f"{page.name}.png"
    shot = ("--window-size=1280,1800", f"--screenshot={png}", path.as_uri())
    _browser(*shot, profile=tmp_path / "profile-shot")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A page that rendered (tables, plots, styled headers) is far from blank.
    assert _non_white_share(png) > 0.03, f"{page.name}: the screenshot is nearly blank ({png})"
