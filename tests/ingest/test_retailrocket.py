from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import config_from_dict
from longtail.ingest import quarantine as Q
from longtail.ingest import read_source

pytestmark = pytest.mark.unit
NOW = dt.datetime(2016, 1, 1, tzinfo=dt.UTC)
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "retailrocket_sample"


def _write(folder: Path) -> None:
    (folder / "events.csv").write_text(
        "timestamp,visitorid,event,itemid,transactionid\n"
        "1433221332117,257597,view,355908,\n"
        "1433224214164,992329,addtocart,248676,\n"
        "1433224314164,992329,transaction,248676,4000\n"
        "1433224314164,992329,transaction,248676,4000\n"
        "1433221332117,,view,355908,\n"
        "1433221332117,5,wishlist,355908,\n"
        "1433221332117,5,view\n"
    )
    (folder / "item_properties_part1.csv").write_text(
        "timestamp,itemid,property,value\n"
        "1431226800000,355908,categoryid,1173\n"
        "1431226800000,355908,790,n5160.000\n"
        "1433041200000,355908,790,n6000.000\n"
        "1431226800000,355908,available,1\n"
        "1431226800000,355908,888,1154859 n4 12\n"
        "1431226800000,248676,790,n-1.000\n"
        "1431226800000,248676,categoryid,abc\n"
    )
    (folder / "category_tree.csv").write_text("categoryid,parentid\n1173,805\n805,\nx,1\n")


def _cfg(folder: Path):  # type: ignore[no-untyped-def]
    return config_from_dict(
        {"source": {"kind": "retailrocket", "path": str(folder), "item_category": None}}
    )


def test_events_map_to_canonical_types_and_rejects_are_counted(tmp_path: Path) -> None:
    _write(tmp_path)
    result = read_source(_cfg(tmp_path), now=NOW)
    events, acc = result.events, result.accounts[0]
    assert events[S.EVENT_TYPE].to_list() == ["view", "cart", "purchase"]
    assert events[S.TRANSACTION_ID].to_list() == [None, None, "4000"]
    assert events[S.EVENT_TIME][0] == dt.datetime(2015, 6, 2, 5, 2, 12, 117000, tzinfo=dt.UTC)
    assert acc.deduplicated == 1
    assert acc.quarantined == {Q.MISSING_ID: 1, Q.UNKNOWN_EVENT: 1, Q.WRONG_FIELD_COUNT: 1}
    acc.check()


def test_item_properties_become_time_versioned_items(tmp_path: Path) -> None:
    _write(tmp_path)
    result = read_source(_cfg(tmp_path), now=NOW)
    item = result.items.filter(pl.col(S.ITEM_ID) == 355908).sort(S.VALID_FROM)
    assert item[S.PRICE].to_list() == [5160.0, 6000.0]
    assert item[S.CATEGORY_ID].to_list() == [1173, 1173]  # carried forward
    assert item[S.AVAILABLE].to_list() == [True, True]
    acc = result.accounts[1]
    assert acc.ignored == 1  # property 888 is recognised, not loaded
    assert acc.quarantined == {Q.NEGATIVE_PRICE: 1, Q.UNPARSABLE_VALUE: 1}
    acc.check()


def test_category_tree_keeps_roots_and_quarantines_bad_ids(tmp_path: Path) -> None:
    _write(tmp_path)
    result = read_source(_cfg(tmp_path), now=NOW)
    assert result.categories.rows() == [(805, None), (1173, 805)]
    assert result.accounts[2].quarantined == {Q.INVALID_ID: 1}


def test_events_alone_are_enough(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "item_properties_part1.csv").unlink()
    (tmp_path / "category_tree.csv").unlink()
    result = read_source(_cfg(tmp_path), now=NOW)
    assert result.events.height == 3
    assert result.items.height == 0
    assert result.categories.height == 0


@pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"shared sample not found at {SAMPLE}")
def test_the_real_sample_ingests_with_nothing_lost() -> None:
    cfg = config_from_dict(
        {"source": {"kind": "retailrocket", "path": str(SAMPLE), "events": "events_sample.csv"}}
    )
    result = read_source(cfg, now=NOW)
    for acc in result.accounts:
        acc.check()
    assert result.accounts[0].rows_read == 9385
    assert result.events.height > 9000
    assert result.items[S.CATEGORY_ID].null_count() == 0
    assert result.categories.height == 1669


def test_non_finite_absurd_and_fractional_property_values_are_quarantined(tmp_path: Path) -> None:
    _write(tmp_path)
    with (tmp_path / "item_properties_part1.csv").open("a") as fh:
        fh.write(
            "1433041200000,355908,790,ninf\n"
            "1433041200000,355908,790,n1e308\n"
            "1433041200000,355908,categoryid,3.7\n"
            "1433041200000,355908,categoryid,nan\n"
        )
    result = read_source(_cfg(tmp_path), now=NOW)
    items_acc = result.accounts[1]
    assert items_acc.quarantined[Q.UNPARSABLE_VALUE] == 4  # abc, ninf, 3.7, nan
    assert items_acc.quarantined[Q.PRICE_OUT_OF_RANGE] == 1
    items_acc.check()
    item = result.items.filter(pl.col(S.ITEM_ID) == 355908)
    assert item[S.CATEGORY_ID].drop_nulls().unique().to_list() == [1173]
    assert item[S.PRICE].is_finite().all()


def test_an_overflowing_event_timestamp_is_quarantined(tmp_path: Path) -> None:
    _write(tmp_path)
    with (tmp_path / "events.csv").open("a") as fh:
        fh.write("99999999999999999999,5,view,355908,\n1e300,5,view,355908,\n")
    acc = read_source(_cfg(tmp_path), now=NOW).accounts[0]
    assert acc.quarantined[Q.TIMESTAMP_OUT_OF_RANGE] == 2
    acc.check()
