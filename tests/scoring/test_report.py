from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from longtail import schema as S
from longtail.paths import ScoringReport
from longtail.scoring.report import catalog_size, scoring_summary, write_scoring_report

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
    assert ScoringReport(tmp_path).summary.is_file()


def test_the_catalog_counts_items_seen_in_events_without_an_item_row_once() -> None:
    # An events-only source gives items without a category no item row; the lists
    # can still hold them, so coverage must never pass 100%.
    import datetime as dt

    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    events = pl.DataFrame(
        {
            S.ITEM_ID: [10, 11, 12, 13],
            S.EVENT_TIME: [t0, t0, t0 + dt.timedelta(days=1), t0 + dt.timedelta(days=3)],
        }
    )
    items = pl.DataFrame({S.ITEM_ID: [10, 14]})
    # 10 and 14 from the item table, 11 and 12 seen before as_of, 13 only after it
    assert catalog_size(events, items, as_of=t0 + dt.timedelta(days=2)) == 4
    coverage = scoring_summary(
        _recs(), user_types=pl.DataFrame({S.USER_ID: [1, 2], "fallback": ["history"] * 2}),
        catalog_size=catalog_size(events, items, as_of=t0 + dt.timedelta(days=2)),
    )["catalog_coverage"]  # fmt: skip
    assert coverage == pytest.approx(3 / 4)
