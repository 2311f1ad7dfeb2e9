from __future__ import annotations

from pathlib import Path

import pytest

from longtail.errors import SourceError
from longtail.ingest.reader import read_delimited

pytestmark = pytest.mark.unit


def test_ragged_rows_are_kept_apart_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n")
    table = read_delimited(path)
    assert table.columns == ["a", "b", "c"]
    assert table.rows["a"].to_list() == ["1", "10"]
    assert table.ragged["line"].to_list() == ["4,5", "6,7,8,9"]
    assert table.ragged["row_number"].to_list() == [2, 3]
    assert table.rows_read == 4


def test_quoted_separators_stay_inside_their_field(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text('a,b\n1,"x, y"\n2,z\n')
    table = read_delimited(path)
    assert table.rows.sort("row_number")["b"].to_list() == ["x, y", "z"]
    assert table.ragged.height == 0


def test_headerless_file_names_columns_by_position(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("1,2,pv\n3,4,buy\n")
    table = read_delimited(path, has_header=False)
    assert table.columns == ["1", "2", "3"]
    assert table.rows["3"].to_list() == ["pv", "buy"]


def test_empty_fields_are_missing_values_and_crlf_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"a,b\r\n1,\r\n,2\r\n")
    rows = read_delimited(path).rows
    assert rows["a"].to_list() == ["1", None]
    assert rows["b"].to_list() == [None, "2"]


def test_missing_file_is_a_source_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source file not found: .*nope\.csv"):
        read_delimited(tmp_path / "nope.csv")


def test_empty_file_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("")
    with pytest.raises(SourceError, match="empty"):
        read_delimited(path)


def test_a_quoted_field_may_span_lines_as_csv_allows(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text('a,b\n1,"x\n\ny, z"\n2,w\n3,"q"\n')
    table = read_delimited(path)
    assert table.rows.rows() == [(1, "1", "x\n\ny, z"), (4, "2", "w"), (5, "3", "q")]
    assert table.rows_read == 3


def test_invalid_utf8_lines_are_kept_apart_as_escaped_text(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"a,b\n1,2\n3,\xe9t\xe9\n5,6\n")
    table = read_delimited(path)
    assert table.rows["a"].to_list() == ["1", "5"]
    assert table.undecodable.rows() == [(2, "3,\\xe9t\\xe9")]
    assert table.rows_read == 3


def test_control_bytes_in_a_row_stay_in_that_row(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"a,b\n1,2\n3,\x01\x00x\n5,6\n")
    table = read_delimited(path)
    assert table.rows["b"].to_list() == ["2", "\x01\x00x", "6"]


def test_fast_and_line_by_line_reads_agree(tmp_path: Path) -> None:
    body = b'a,b\n1,2\n\n3,"x, y"\n4\n5,6\r\n'
    fast, slow = tmp_path / "fast.csv", tmp_path / "slow.csv"
    fast.write_bytes(body)
    slow.write_bytes(body + b"\xff\n")  # one undecodable line sends the file down the slow path
    a, b = read_delimited(fast), read_delimited(slow)
    assert a.rows.equals(b.rows)
    assert a.ragged.equals(b.ragged)
    assert b.undecodable["row_number"].to_list() == [6]


def test_duplicate_header_names_are_a_source_error_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("a,b,a,c,c\n1,2,3,4,5\n")
    with pytest.raises(
        SourceError, match=r"e\.csv: the header repeats column name\(s\) \['a', 'c'\]"
    ):
        read_delimited(path)


def test_an_undecodable_header_is_the_files_problem(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"caf\xe9,b\n1,2\n3,4\n")
    with pytest.raises(SourceError, match=r"the header among them"):
        read_delimited(path)


def test_a_stray_quote_mid_file_does_not_swallow_the_rows_after_it(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text('a,b,c\n1,2,3\n4,"5,6\n7,8,9\n10,11,12\n')
    table = read_delimited(path)
    assert table.rows["a"].to_list() == ["1", "7", "10"]
    assert table.ragged.rows() == [(2, '4,"5,6')]


def test_an_unterminated_quote_at_the_end_is_ragged_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text('a,b\n1,2\n3,"4\n')
    table = read_delimited(path)
    assert table.rows["a"].to_list() == ["1"]
    assert table.ragged.rows() == [(2, '3,"4')]


def test_a_bare_carriage_return_or_a_huge_field_is_one_row_s_problem(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    huge = "x" * 200_000
    path.write_bytes(f'a,b\n1,"p\rq"\n2,"{huge}"\n3,4\n'.encode())
    table = read_delimited(path)
    assert table.rows.rows() == [(1, "1", "p\rq"), (3, "3", "4")]
    assert table.ragged["row_number"].to_list() == [2]
