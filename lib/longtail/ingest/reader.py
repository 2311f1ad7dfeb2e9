"""Read delimited text without losing a row.

A standard CSV reader either fails on a ragged line or silently pads it. Here the
file is read as whole lines, rows with the right number of fields are split
vectorized (lines with quotes go through Python's ``csv`` so quoted separators
work), and rows with the wrong number of fields come back separately, with their
original line, for the quarantine.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from longtail.errors import SourceError

__all__ = ["RawTable", "read_delimited", "read_parquet_raw"]

_LINE_SEP = "\x01"  # a separator that never occurs, so each line is one field


@dataclass(frozen=True)
class RawTable:
    """A source file as string columns plus ``row_number`` (1-based line of data)."""

    path: Path
    columns: list[str]
    rows: pl.DataFrame
    # Rows with the wrong number of fields: row_number, line.
    ragged: pl.DataFrame
    # Columns holding epoch microseconds (typed timestamps of a Parquet file).
    epoch_us_columns: frozenset[str] = frozenset()

    @property
    def rows_read(self) -> int:
        """Every data row in the file, well-formed or not."""
        return self.rows.height + self.ragged.height


def _split_quoted(lines: list[str], separator: str) -> list[list[str]]:
    return list(csv.reader(lines, delimiter=separator))


def read_delimited(path: Path, *, separator: str = ",", has_header: bool = True) -> RawTable:
    """Read a delimited text file into string columns, keeping ragged rows apart.

    Parameters
    ----------
    path
        The file.
    separator
        Field separator (one character).
    has_header
        Whether the first line names the columns; otherwise they are named
        ``"1"``, ``"2"``, ... by position.

    Raises
    ------
    SourceError
        The file is missing or empty.
    """
    if not path.is_file():
        msg = f"source file not found: {path}"
        raise SourceError(msg)
    if len(separator) != 1:
        msg = f"separator must be one character. Got {separator!r} instead."
        raise SourceError(msg)
    try:
        lines = pl.read_csv(
            path,
            has_header=False,
            separator=_LINE_SEP,
            quote_char=None,
            new_columns=["line"],
            schema_overrides={"line": pl.String},
            infer_schema=False,
        ).get_column("line")
    except pl.exceptions.NoDataError as exc:
        msg = f"source file is empty: {path}"
        raise SourceError(msg) from exc
    lines = lines.str.strip_suffix("\r").fill_null("")
    frame = pl.DataFrame({"line": lines}).with_row_index("row_number", offset=0)
    frame = frame.filter(pl.col("line").str.len_chars() > 0)
    if frame.height == 0:
        msg = f"source file is empty: {path}"
        raise SourceError(msg)
    if has_header:
        header_line = frame.get_column("line")[0]
        columns = _split_quoted([header_line], separator)[0]
        columns = [c.strip() for c in columns]
        frame = frame.slice(1)
        n_fields = len(columns)
    else:
        columns = []
        n_fields = 0
    # Data rows are numbered from 1 in the order they appear.
    frame = frame.with_columns(
        (pl.col("row_number") + (0 if has_header else 1)).cast(pl.Int64),
        pl.col("line").str.contains('"', literal=True).alias("_quoted"),
    )
    plain = frame.filter(~pl.col("_quoted"))
    quoted = frame.filter(pl.col("_quoted"))
    plain_fields = plain.select(
        "row_number", "line", pl.col("line").str.split(separator).alias("fields")
    )
    if quoted.height:
        parsed = _split_quoted(quoted.get_column("line").to_list(), separator)
        quoted_fields = quoted.select("row_number", "line").with_columns(
            pl.Series("fields", parsed, dtype=pl.List(pl.String))
        )
        all_fields = pl.concat([plain_fields, quoted_fields]).sort("row_number")
    else:
        all_fields = plain_fields
    all_fields = all_fields.with_columns(pl.col("fields").list.len().alias("_n"))
    if not has_header:
        # Without a header the most common field count is the file's width.
        n_fields = int(all_fields.get_column("_n").mode().sort()[-1])
        columns = [str(i) for i in range(1, n_fields + 1)]
    good = all_fields.filter(pl.col("_n") == n_fields)
    ragged = all_fields.filter(pl.col("_n") != n_fields).select("row_number", "line")
    rows = good.select(
        "row_number",
        *[
            pl.col("fields").list.get(i).str.strip_chars().alias(name)
            for i, name in enumerate(columns)
        ],
    ).with_columns(
        # An empty field is a missing value.
        [
            pl.when(pl.col(c).str.len_chars() == 0).then(None).otherwise(pl.col(c)).alias(c)
            for c in columns
        ]
    )
    return RawTable(path=path, columns=columns, rows=rows, ragged=ragged)


def read_parquet_raw(path: Path) -> RawTable:
    """Read a Parquet file as string columns plus ``row_number`` (Parquet rows are never ragged).

    Raises
    ------
    SourceError
        The file is missing or not Parquet.
    """
    if not path.is_file():
        msg = f"source file not found: {path}"
        raise SourceError(msg)
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several unrelated types for a bad file
        msg = f"cannot read Parquet file {path}: {exc}"
        raise SourceError(msg) from exc
    columns = list(frame.columns)
    # Typed timestamps become epoch microseconds; a naive timestamp is taken as UTC.
    temporal = frozenset(c for c in columns if frame.schema[c] in (pl.Datetime, pl.Date))
    rows = frame.with_columns(
        [
            pl.col(c).cast(pl.Datetime("us")).dt.epoch("us").cast(pl.String)
            if c in temporal
            else pl.col(c).cast(pl.String)
            for c in columns
        ]
    ).with_row_index("row_number", offset=1)
    rows = rows.with_columns(pl.col("row_number").cast(pl.Int64))
    ragged = pl.DataFrame(schema={"row_number": pl.Int64, "line": pl.String})
    return RawTable(path=path, columns=columns, rows=rows, ragged=ragged, epoch_us_columns=temporal)


def require_columns(table: RawTable, wanted: list[str]) -> None:
    """Raise one clear line naming the file and the first missing column."""
    for name in wanted:
        if name not in table.columns:
            msg = f"{table.path}: required column {name!r} is missing (columns: {table.columns})"
            raise SourceError(msg)
