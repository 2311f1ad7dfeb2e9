from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import config_from_dict
from longtail.errors import SourceError
from longtail.ingest import quarantine as Q
from longtail.ingest import read_source, run_ingest
from longtail.paths import Layout

pytestmark = pytest.mark.unit
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
# user, item, category, event, unix seconds: one good row per kind, then one defect per reason
ROWS = """\
1,10,100,pv,1714521600
1,10,100,cart,1714521660
1,10,100,buy,1714521720
1,10,100,pv,1714521600
2,11,100,fav,1714521600
,11,100,pv,1714521600
x7,11,100,pv,1714521600
2,11,100,pv,not-a-time
2,11,100,pv,1893456000
2,11,100,click,1714521600
2,11,100
2,11,100,pv,1714521600,extra
"""


def _cfg(tmp_path: Path, events: Path, **extra: Any):  # type: ignore[no-untyped-def]
    src: dict[str, Any] = {
        "kind": "generic",
        "events": str(events),
        "has_header": False,
        "columns": {"user_id": 1, "item_id": 2, "category_id": 3, "event_type": 4, "event_time": 5},
        "event_time": {"unit": "s"},
        "event_names": {"view": ["pv"], "cart": ["cart"], "purchase": ["buy"], "ignore": ["fav"]},
    }
    src.update(extra)
    return config_from_dict({"data_dir": str(tmp_path / "data"), "source": src})


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(ROWS)
    return path


def test_every_row_is_accepted_deduplicated_ignored_or_quarantined(
    tmp_path: Path, events_csv: Path
) -> None:
    result = read_source(_cfg(tmp_path, events_csv), now=NOW)
    acc = result.accounts[0]
    assert acc.rows_read == 12
    assert acc.accepted == 3
    assert acc.deduplicated == 1
    assert acc.ignored == 1
    assert acc.quarantined == {
        Q.MISSING_ID: 1,
        Q.INVALID_ID: 1,
        Q.UNPARSABLE_TIMESTAMP: 1,
        Q.FUTURE_TIMESTAMP: 1,
        Q.UNKNOWN_EVENT: 1,
        Q.WRONG_FIELD_COUNT: 2,
    }
    assert acc.accepted + acc.deduplicated + acc.ignored + acc.quarantined_total == acc.rows_read


def test_quarantine_keeps_original_values_and_row_numbers(tmp_path: Path, events_csv: Path) -> None:
    q = read_source(_cfg(tmp_path, events_csv), now=NOW).quarantine
    bad_time = q.filter(pl.col("reason") == Q.UNPARSABLE_TIMESTAMP).row(0, named=True)
    assert bad_time["row_number"] == 8
    assert json.loads(bad_time["raw"])["5"] == "not-a-time"
    ragged = q.filter(pl.col("reason") == Q.WRONG_FIELD_COUNT)["raw"].to_list()
    assert json.loads(ragged[0])["line"] == "2,11,100"


def test_events_are_canonical_and_items_come_from_the_category_column(
    tmp_path: Path, events_csv: Path
) -> None:
    result = read_source(_cfg(tmp_path, events_csv), now=NOW)
    assert dict(result.events.schema) == S.EVENTS
    assert result.events[S.EVENT_TYPE].to_list() == ["view", "cart", "purchase"]
    assert result.events[S.EVENT_TIME][0] == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert result.items.select(S.ITEM_ID, S.CATEGORY_ID).rows() == [(10, 100)]
    assert result.categories[S.CATEGORY_ID].to_list() == [100]


def test_columns_by_name_and_time_by_format(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("who,what,kind,when\n5,6,pv,2024-05-01 10:00:00\n5,6,buy,2024-05-01 11:00:00\n")
    cfg = config_from_dict(
        {
            "source": {
                "kind": "generic",
                "events": str(path),
                "columns": {
                    "user_id": "who",
                    "item_id": "what",
                    "event_type": "kind",
                    "event_time": "when",
                },
                "event_time": {"format": "%Y-%m-%d %H:%M:%S", "timezone": "Europe/Berlin"},
                "event_names": {"view": ["pv"], "purchase": ["buy"]},
            }
        }
    )
    result = read_source(cfg, now=NOW)
    assert result.events[S.EVENT_TIME].to_list() == [
        dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC),
        dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC),
    ]


def test_parquet_with_typed_timestamps_needs_no_format(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pl.DataFrame(
        {
            "u": [1, 2],
            "i": [3, 4],
            "e": ["pv", "pv"],
            "t": [dt.datetime(2024, 5, 1, 12), dt.datetime(2024, 5, 2, 12)],
            "price": [10.0, -1.0],
        }
    ).write_parquet(path)
    cfg = config_from_dict(
        {
            "source": {
                "kind": "generic",
                "events": str(path),
                "columns": {
                    "user_id": "u",
                    "item_id": "i",
                    "event_type": "e",
                    "event_time": "t",
                    "price": "price",
                },
                "event_names": {"view": ["pv"]},
            }
        }
    )
    result = read_source(cfg, now=NOW)
    assert result.events[S.EVENT_TIME].to_list() == [dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)]
    assert result.accounts[0].quarantined == {Q.NEGATIVE_PRICE: 1}
    assert result.items.select(S.ITEM_ID, S.PRICE).rows() == [(3, 10.0)]


def test_string_ids_are_hashed_stably_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("u-a,i-1,pv,1714521600\nu-b,i-1,pv,1714521601\n")
    cfg = _cfg(
        tmp_path,
        path,
        id_encoding="hash",
        columns={"user_id": 1, "item_id": 2, "event_type": 3, "event_time": 4},
    )
    first = read_source(cfg, now=NOW)
    second = read_source(cfg, now=NOW)
    assert first.events.equals(second.events)
    assert first.events[S.USER_ID].n_unique() == 2
    assert first.id_map is not None
    assert set(first.id_map["original"]) == {"u-a", "u-b", "i-1"}


def test_unparsable_price_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("1,2,pv,1714521600,abc\n1,2,pv,1714521601,3.5\n")
    cfg = _cfg(
        tmp_path,
        path,
        columns={"user_id": 1, "item_id": 2, "event_type": 3, "event_time": 4, "price": 5},
    )
    result = read_source(cfg, now=NOW)
    assert result.accounts[0].quarantined == {Q.UNPARSABLE_PRICE: 1}


def test_position_beyond_the_file_names_the_key(tmp_path: Path, events_csv: Path) -> None:
    cfg = _cfg(
        tmp_path, events_csv, columns={"user_id": 1, "item_id": 2, "event_type": 4, "event_time": 9}
    )
    with pytest.raises(SourceError, match=r"source\.columns\.event_time = 9"):
        read_source(cfg, now=NOW)


def test_run_ingest_writes_tables_quarantine_and_a_summary_that_adds_up(
    tmp_path: Path, events_csv: Path
) -> None:
    cfg = _cfg(tmp_path, events_csv)
    summary = run_ingest(cfg, now=NOW)
    data = Layout(tmp_path / "data")
    saved = json.loads(data.ingest_summary.read_text())
    assert saved["rows_read"] == 12
    assert (
        saved["accepted"]
        + saved["deduplicated"]
        + saved["ignored"]
        + sum(saved["quarantined"].values())
        == saved["rows_read"]
    )
    assert pl.read_parquet(data.table("events")).height == summary.tables["events"]["accepted"]
    assert pl.read_parquet(data.quarantine_rows).height == 7
