from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from longtail.config import Config
from longtail.io import write_parquet
from longtail.scoring.serving import push_lists
from longtail.store.definitions import RECS_SOURCE_PATH

pytestmark = pytest.mark.unit


def test_lists_of_a_date_older_than_the_served_ones_are_not_pushed(tmp_path: Path) -> None:
    # A backfill (or a forced rerun of an earlier date) must not replace the newest lists
    # services read; the check comes before the store is touched.
    cfg = Config(data_dir=tmp_path)
    source = tmp_path / RECS_SOURCE_PATH
    write_parquet(pl.DataFrame({"user_id": [1], "rec_date": ["2024-01-21"]}), source)
    before = source.read_bytes()
    recs = pl.DataFrame({"user_id": [1], "rank": [1], "item_id": [5]})
    at = dt.datetime(2024, 1, 21, tzinfo=dt.UTC)
    pushed = push_lists(None, cfg, recs, date=dt.date(2024, 1, 20), as_of=at)  # type: ignore[arg-type]
    assert pushed == 0
    assert source.read_bytes() == before
