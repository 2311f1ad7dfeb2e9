"""Real exports by config alone: no single row stops an ingest, and each bad row says why."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longtail import schema as S
from longtail.config import Config, config_from_dict
from longtail.errors import SourceError
from longtail.ingest import quarantine as Q
from longtail.ingest import read_source
from longtail.ingest.result import IngestResult

pytestmark = pytest.mark.unit
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
HEADER = "user,item,category,event,ts,price\n"
# Four good rows: a view, a cart and a purchase of item 10 (category 100), a view of 11.
GOOD = (
    "1,10,100,pv,1714521600,9.5\n"
    "1,10,100,cart,1714521660,9.5\n"
    "1,10,100,buy,1714521720,9.5\n"
    "2,11,200,pv,1714525200,20\n"
)
COLUMNS = {
    "user_id": "user",
    "item_id": "item",
    "category_id": "category",
    "event_type": "event",
    "event_time": "ts",
    "price": "price",
}


def _cfg(events: Path, *, ingest: dict[str, Any] | None = None, **source: Any) -> Config:
    src: dict[str, Any] = {
        "kind": "generic",
        "events": str(events),
        "columns": COLUMNS,
        "event_time": {"unit": "s"},
        "event_names": {"view": ["pv"], "cart": ["cart"], "purchase": ["buy"]},
    }
    src.update(source)
    return config_from_dict(
        {"data_dir": str(events.parent / "data"), "source": src, "ingest": ingest or {}}
    )


def _write(tmp_path: Path, body: str | bytes, name: str = "events.csv") -> Path:
    path = tmp_path / name
    if isinstance(body, str):
        path.write_text(body, encoding="utf-8")
    else:
        path.write_bytes(body)
    return path


def _read(path: Path, **kw: Any) -> IngestResult:
    result = read_source(_cfg(path, **kw), now=NOW)
    for acc in result.accounts:
        acc.check()  # the accounting identity, on every file
    events = result.accounts[0]
    assert (
        events.accepted + events.deduplicated + events.ignored + sum(events.quarantined.values())
        == events.rows_read
    )
    assert result.quarantine.filter(pl.col("table") == "events").height == sum(
        events.quarantined.values()
    )
    return result


def _only_reason(result: IngestResult) -> tuple[str, dict[str, Any]]:
    """The single quarantined row's reason and raw values; the four good rows are loaded."""
    assert result.accounts[0].accepted == 4
    assert result.quarantine.height == 1
    row = result.quarantine.row(0, named=True)
    return row["reason"], json.loads(row["raw"])


@pytest.mark.parametrize(
    "ts",
    ["99999999999999", "1e300", "-1e300", "inf", "-100000", "0", "1900", "946684799"],
)
def test_out_of_range_and_overflowing_timestamps_are_quarantined_not_fatal(
    tmp_path: Path, ts: str
) -> None:
    path = _write(tmp_path, HEADER + GOOD + f"3,12,100,pv,{ts},1\n")
    reason, raw = _only_reason(_read(path))
    assert reason == Q.TIMESTAMP_OUT_OF_RANGE
    assert raw["ts"] == ts


def test_the_plausible_range_starts_at_the_configured_earliest_timestamp(tmp_path: Path) -> None:
    # 2024-04-30: plausible by default, before an earliest_timestamp of 2024-05-01
    path = _write(tmp_path, HEADER + GOOD + "3,12,100,pv,1714435200,1\n")
    assert _read(path).accounts[0].accepted == 5
    result = _read(path, ingest={"earliest_timestamp": "2024-05-01T00:00:00"})
    assert _only_reason(result)[0] == Q.TIMESTAMP_OUT_OF_RANGE


def test_nan_timestamp_is_unparsable_and_a_late_one_is_future(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + GOOD + "3,12,100,pv,nan,1\n3,12,100,pv,1893456000,1\n")
    result = _read(path)
    assert result.accounts[0].quarantined == {Q.UNPARSABLE_TIMESTAMP: 1, Q.FUTURE_TIMESTAMP: 1}


def test_an_invalid_utf8_row_is_quarantined_with_its_bytes_escaped(tmp_path: Path) -> None:
    body = (HEADER + GOOD).encode() + b"3,12,100,p\xffv,1714521600,1\n"
    result = _read(_write(tmp_path, body))
    reason, raw = _only_reason(result)
    assert reason == Q.INVALID_UTF8
    assert raw["line"] == "3,12,100,p\\xffv,1714521600,1"
    assert result.quarantine["row_number"].to_list() == [5]


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        ("nan", Q.UNPARSABLE_PRICE),
        ("inf", Q.UNPARSABLE_PRICE),
        ("-inf", Q.UNPARSABLE_PRICE),
        ("abc", Q.UNPARSABLE_PRICE),
        ("1e308", Q.PRICE_OUT_OF_RANGE),
        ("-2", Q.NEGATIVE_PRICE),
    ],
)
def test_non_finite_and_absurd_prices_are_quarantined(
    tmp_path: Path, price: str, reason: str
) -> None:
    path = _write(tmp_path, HEADER + GOOD + f"3,10,100,pv,1714521700,{price}\n")
    result = _read(path)
    assert _only_reason(result)[0] == reason
    assert result.items[S.PRICE].is_finite().all()


def test_the_price_ceiling_is_configurable(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + GOOD + "3,10,100,pv,1714521700,5000\n")
    assert _read(path).accounts[0].accepted == 5
    assert _only_reason(_read(path, ingest={"max_price": 1000}))[0] == Q.PRICE_OUT_OF_RANGE


@pytest.mark.parametrize("category", ["notacat", "3.7", "1e300"])
def test_an_unparsable_category_is_quarantined_and_never_overwrites_the_real_one(
    tmp_path: Path, category: str
) -> None:
    # a later event of item 10 with a bad category, and one with none at all
    extra = f"3,10,{category},pv,1714600000,9.5\n3,10,,pv,1714700000,12\n"
    result = read_source(_cfg(_write(tmp_path, HEADER + GOOD + extra)), now=NOW)
    assert result.accounts[0].quarantined == {Q.UNPARSABLE_VALUE: 1}
    item10 = result.items.filter(pl.col(S.ITEM_ID) == 10).sort(S.VALID_FROM)
    assert item10[S.CATEGORY_ID].to_list() == [100, 100]  # the price changed, the category did not
    assert item10[S.PRICE].to_list() == [9.5, 12.0]


def test_integral_floats_are_integers_for_ids_and_categories(tmp_path: Path) -> None:
    # what a pandas export of an int column with gaps looks like
    path = _write(tmp_path, HEADER + "1.0,10.0,100.0,pv,1714521600,1\n")
    result = _read(path)
    assert result.events.select(S.USER_ID, S.ITEM_ID).rows() == [(1, 10)]
    assert result.items.select(S.ITEM_ID, S.CATEGORY_ID).rows() == [(10, 100)]


def test_events_outside_the_ingest_window_are_quarantined(tmp_path: Path) -> None:
    stray = "3,12,100,pv,1704067200,1\n"  # 2024-01-01, months before the rest
    path = _write(tmp_path, HEADER + GOOD + stray)
    result = _read(path, ingest={"window_start": "2024-05-01", "window_end": "2024-05-02"})
    reason, raw = _only_reason(result)
    assert reason == Q.OUTSIDE_WINDOW
    assert raw["ts"] == "1704067200"
    # the end is exclusive: 2024-05-01 01:00 is out with window_end at 01:00
    late = _read(path, ingest={"window_end": "2024-05-01T01:00:00"})
    assert late.accounts[0].quarantined == {Q.OUTSIDE_WINDOW: 1}
    assert late.accounts[0].accepted == 4


def test_a_reversed_window_is_a_config_error(tmp_path: Path) -> None:
    from longtail.errors import ConfigError

    with pytest.raises(ConfigError, match=r"ingest.window_start must be before"):
        _cfg(tmp_path / "e.csv", ingest={"window_start": "2024-05-02", "window_end": "2024-05-01"})


def test_a_quoted_field_with_a_newline_is_one_row(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + GOOD + '3,12,100,"pv",1714521600,"1"\n')
    header = "user,item,category,event,ts,price,note\n"
    body = "".join(line + ",x\n" for line in GOOD.splitlines())
    body += '3,12,100,pv,1714521600,1,"two\nlines"\n'
    result = _read(_write(tmp_path, header + body, "notes.csv"))
    assert result.accounts[0].accepted == 5
    assert result.accounts[0].rows_read == 5
    assert _read(path).accounts[0].accepted == 5


# ------------------------------------------------------------------ one line for the whole file


def test_duplicate_header_names_are_one_error_naming_them(tmp_path: Path) -> None:
    path = _write(tmp_path, "user,item,category,event,ts,ts\n" + GOOD)
    with pytest.raises(
        SourceError, match=r"events\.csv: the header repeats column name\(s\) \['ts'\]"
    ):
        read_source(_cfg(path), now=NOW)


def test_a_utf16_file_is_one_error_saying_so(tmp_path: Path) -> None:
    for encoding in ("utf-16", "utf-16-le"):
        path = _write(tmp_path, (HEADER + GOOD).encode(encoding))
        with pytest.raises(SourceError, match=r"events\.csv: the file is .*UTF-8"):
            read_source(_cfg(path), now=NOW)


def test_a_latin1_file_is_one_error_not_a_quarantine_of_most_rows(tmp_path: Path) -> None:
    body = HEADER + "".join(f"{u},10,100,pv,1714521600,1,é\n" for u in range(5))
    path = _write(tmp_path, body.replace("price", "price,note").encode("latin-1"))
    with pytest.raises(SourceError, match=r"5 of 6 lines are not valid UTF-8"):
        read_source(_cfg(path), now=NOW)


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbf" + (HEADER + GOOD).encode())
    assert _read(path).accounts[0].accepted == 4


def test_a_parquet_list_column_is_one_error_when_mapped_and_ignored_when_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.parquet"
    pl.DataFrame(
        {
            "user": [1, 2],
            "item": [[10], [11]],
            "event": ["pv", "pv"],
            "ts": [1714521600, 1714521660],
            "tags": [["a"], ["b", "c"]],
        }
    ).write_parquet(path)
    columns = {"user_id": "user", "item_id": "item", "event_type": "event", "event_time": "ts"}
    with pytest.raises(SourceError, match=r"events\.parquet: column 'item' has type List"):
        read_source(_cfg(path, columns=columns), now=NOW)
    ok = pl.read_parquet(path).with_columns(pl.col("item").list.first())
    ok.write_parquet(path)
    result = read_source(_cfg(path, columns=columns), now=NOW)
    assert result.accounts[0].accepted == 2


# ------------------------------------------------------------------ hints for a whole column


@pytest.mark.parametrize(("unit", "scale"), [("ms", 1_000), ("us", 1_000_000), ("ns", 10**9)])
def test_timestamps_in_another_unit_name_the_unit_and_the_key(
    tmp_path: Path, unit: str, scale: int
) -> None:
    rows = "".join(f"1,{10 + i},100,pv,{(1714521600 + 60 * i) * scale},1\n" for i in range(20))
    path = _write(tmp_path, HEADER + rows)
    with pytest.raises(SourceError) as info:
        read_source(_cfg(path), now=NOW)
    msg = str(info.value)
    assert "\n" not in msg
    assert "20 of 20 timestamps" in msg
    assert f'set source.event_time.unit = "{unit}"' in msg


def test_seconds_read_as_milliseconds_are_named_too(tmp_path: Path) -> None:
    rows = "".join(f"1,{10 + i},100,pv,{1714521600 + 60 * i},1\n" for i in range(5))
    path = _write(tmp_path, HEADER + rows)
    with pytest.raises(SourceError, match=r'timestamp_out_of_range 5\).*unit = "s"'):
        read_source(_cfg(path, event_time={"unit": "ms"}), now=NOW)


def test_string_ids_with_int_encoding_suggest_hash(tmp_path: Path) -> None:
    rows = "".join(f"u-{i},i-{i},100,pv,1714521600,1\n" for i in range(6))
    path = _write(tmp_path, HEADER + rows)
    with pytest.raises(SourceError, match=r'6 of 6 user_id values are not integers .*"hash"'):
        read_source(_cfg(path), now=NOW)
    result = read_source(_cfg(path, id_encoding="hash"), now=NOW)
    assert result.accounts[0].accepted == 6


def test_unmapped_event_names_name_the_most_common_ones(tmp_path: Path) -> None:
    rows = "".join(f"1,10,100,{e},1714521600,1\n" for e in ["PageView"] * 4 + ["Basket", "pv"])
    path = _write(tmp_path, HEADER + rows)
    with pytest.raises(
        SourceError, match=r"5 of 6 rows have an event name .*'PageView' 4, 'Basket' 1.*ignore"
    ):
        read_source(_cfg(path), now=NOW)
    ok = _read(path, event_names={"view": ["pv", "PageView"], "ignore": ["Basket"]})
    assert (ok.accounts[0].accepted, ok.accounts[0].ignored) == (1, 1)  # 5 views, 4 duplicates


def test_a_few_string_ids_are_only_quarantined(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + GOOD + "x7,10,100,pv,1714521600,1\n")
    assert _only_reason(_read(path))[0] == Q.INVALID_ID


# ------------------------------------------------------------------ one garbage row changes nothing

_GOOD_ROWS = st.lists(
    st.tuples(
        st.integers(0, 50),
        st.integers(0, 50),
        st.integers(0, 9),
        st.sampled_from(["pv", "cart", "buy"]),
        st.integers(1_704_067_200, 1_717_000_000),
        st.sampled_from(["", "0", "1.5", "20", "999.99"]),
    ),
    min_size=3,
    max_size=12,
)
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40).map(
    lambda s: s.encode()
)
_FIELD = st.one_of(
    st.sampled_from(
        [
            "",
            "nan",
            "inf",
            "-inf",
            "1e300",
            "-1e300",
            "99999999999999",
            "0",
            "-1",
            "1.5",
            "3.7",
            "x",
            '"',
            '""',
            "1,2",
            "\x00",
            "\x01",
            "\r",
            '"a\rb"',
            "x" * 140_000,  # over the csv module's field limit
            "pv",
            "buy",
            "fav",
        ]
    ),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)
_GARBAGE = st.one_of(
    st.lists(_FIELD, min_size=0, max_size=9).map(lambda fs: ",".join(fs).encode()),
    st.binary(max_size=40),
    _TEXT,
).map(lambda b: b.replace(b"\n", b" "))  # one row: a line of its own (a bare \r stays)


def _outcome(result: IngestResult, n_good: int) -> tuple[Any, ...]:
    """What happened to rows 1..n_good: the loaded events and each good row's quarantine."""
    q = result.quarantine.filter(pl.col("row_number") <= n_good).sort("row_number")
    return (
        result.events.sort(S.EVENT_TIME, S.USER_ID, S.ITEM_ID, S.EVENT_TYPE).rows(),
        q.select("row_number", "reason", "raw").rows(),
    )


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(good=_GOOD_ROWS, garbage=_GARBAGE)
def test_appending_one_garbage_row_never_changes_what_happens_to_the_good_rows(
    tmp_path: Path, good: list[tuple[Any, ...]], garbage: bytes
) -> None:
    body = HEADER + "".join(",".join(str(v) for v in row) + "\n" for row in good)
    clean = _write(tmp_path, body, "clean.csv")
    dirty = _write(tmp_path, body.encode() + garbage + b"\n", "dirty.csv")
    before = read_source(_cfg(clean), now=NOW)
    after = read_source(_cfg(dirty), now=NOW)  # never raises: one row is never the file's fault
    for acc in after.accounts:
        acc.check()
    assert after.accounts[0].rows_read in (len(good), len(good) + 1)
    b_events, b_q = _outcome(before, len(good))
    a_all = after.events.sort(S.EVENT_TIME, S.USER_ID, S.ITEM_ID, S.EVENT_TYPE).rows()
    _, a_q = _outcome(after, len(good))
    assert [r[1:] for r in a_q] == [r[1:] for r in b_q]
    # the good rows' events are all still there; at most the garbage row was added
    added = Counter(a_all)
    added.subtract(Counter(b_events))
    assert min(added.values(), default=0) >= 0
    assert sum(added.values()) <= 1


def test_hash_encoding_maps_string_categories_too(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + "u-1,i-1,shoes,pv,1714521600,1\nu-2,i-2,3.7,pv,1714521600,1\n")
    result = _read(path, id_encoding="hash")
    assert result.accounts[0].accepted == 2
    assert result.id_map is not None
    cats = result.id_map.filter(pl.col("kind") == "category")
    assert set(cats["original"]) == {"shoes", "3.7"}
    assert set(result.items[S.CATEGORY_ID]) == set(cats["id"])
