from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from longtail import schema as S
from longtail.scoring.report import scoring_summary, write_scoring_report

pytestmark = pytest.mark.unit


def _recs() -> pl.DataFrame:
    return pl.DataFrame(
        {
            S.USER_ID: [1, 1, 2, 2],
            S.ITEM_ID: [10, 11, 10, 12],
            "probability": [0.2, 0.1, 0.3, 0.05],
            S.POPULARITY_BUCKET: ["head", "tail", "head", "torso"],
        }
    )


def test_summary_counts_coverage_tail_share_and_fallbacks() -> None:
    types = pl.DataFrame({S.USER_ID: [1, 2, 3], "fallback": ["history", "history", "cold_start"]})
    s = scoring_summary(_recs(), user_types=types, catalog_size=10)
    assert s["catalog_coverage"] == pytest.approx(0.3)
    assert s["tail_share"] == pytest.approx(0.25)
    assert s["bucket_share"] == pytest.approx({"head": 0.5, "torso": 0.25, "tail": 0.25})
    assert s["mean_tail_share_per_list"] == pytest.approx(0.25)
    assert s["users_per_fallback"] == {"cold_start": 1, "history": 2}


def test_report_writes_json_and_html_with_a_plot(tmp_path: Path) -> None:
    types = pl.DataFrame({S.USER_ID: [1, 2], "fallback": ["history", "history"]})
    s = scoring_summary(_recs(), user_types=types, catalog_size=10)
    path = write_scoring_report(_recs(), s, tmp_path, title="Scoring 2024-01-01")
    text = path.read_text()
    assert "data:image/png;base64," in text
    assert "catalog coverage" in text
    assert (tmp_path / "scoring_report.json").is_file()
