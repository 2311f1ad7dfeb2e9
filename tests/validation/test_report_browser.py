from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from longtail.config import Config
from longtail.validation import run_gate
from tests.validation.validation_data import DAY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    BROWSER is None, reason="chromium is not installed (apt-get install -y chromium)"
)
def test_report_renders_in_headless_chromium(
    dataset: Callable[..., Config], tmp_path: Path
) -> None:
    result = run_gate(dataset(data_docs=True), date=DAY)
    shots = {}
    for name in ("report",):  # the Data Docs are GE's own pages: scripts/screenshot_report.sh
        png = tmp_path / f"{name}.png"
        page = Path(result.outputs[name]).resolve()
        subprocess.run(
            [
                str(BROWSER),
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
        [str(BROWSER), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         Path(result.outputs["report"]).resolve().as_uri()],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "PASSED" in dom
    assert dom.count('<img id="plot-') == 4
