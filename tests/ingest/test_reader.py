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
