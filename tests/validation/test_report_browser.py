from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from longtail.config import Config
from longtail.validation import run_gate
from tests.services import chromium
from tests.validation.validation_data import DAY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# Networking off and a fresh profile: the page must render from the file alone.
OFFLINE = ["--disable-quic", "--disable-sync", "--user-data-dir={profile}"]


def test_report_renders_in_headless_chromium(
    dataset: Callable[..., Config], tmp_path: Path
) -> None:
    browser = chromium()  # skips locally, fails under CI=true, when it is not installed
    offline = [flag.format(profile=tmp_path / "profile") for flag in OFFLINE]
    result = run_gate(dataset(data_docs=True), date=DAY)
    shots = {}
    for name in ("report",):  # Data Docs and the other reports: tests/e2e/test_reports.py
        png = tmp_path / f"{name}.png"
        page = Path(result.outputs[name]).resolve()
        subprocess.run(
            [
                browser,
                *offline,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--window-size=1200,1800",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        shots[name] = png.read_bytes()
    # A rendered page is a PNG of the window size with more than a blank page's bytes;
    # the report (tables and four embedded plots) is far from blank.
    for name, data in shots.items():
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (width, height) == (1200, 1800), name
    assert len(shots["report"]) > 50_000
    # The DOM after layout: dump it and find the verdict and the plots in place.
    dom = subprocess.run(
        [browser, *offline, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         Path(result.outputs["report"]).resolve().as_uri()],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "PASSED" in dom
    assert dom.count('<img id="plot-') == 4
