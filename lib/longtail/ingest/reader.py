"""Read delimited text without losing a row.

A standard CSV reader either fails on a ragged line or silently pads it, and
stops the whole file on one undecodable byte. Here the file is read as whole
lines, rows with the right number of fields are split vectorized (lines with
quotes go through Python's ``csv`` so quoted separators work, and a quoted field
may span lines as CSV allows), rows with the wrong number of fields come back
separately with their original line, and lines that are not valid UTF-8 come
back separately too, their bytes kept as escaped text. Both go to the
quarantine. Problems of the whole file (an encoding other than UTF-8, duplicate
column names, a column type that cannot be read) are one :class:`SourceError`.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from longtail.errors import SourceError

__all__ = ["RawTable", "read_delimited", "read_parquet_raw", "require_columns"]

_CR: Final = "\ue000"  # csv refuses a bare \r outside quotes: this stands in while parsing
_LINE_SEP: Final = "\x01"  # the fast path reads each line as one field split on this byte
_CHUNK: Final = 1 << 24
_UTF16_BOMS: Final = (
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
)
_LINES_SCHEMA: Final[dict[str, pl.DataType]] = {"row_number": pl.Int64(), "line": pl.String()}


def _no_lines() -> pl.DataFrame:
    return pl.DataFrame(schema=_LINES_SCHEMA)


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
    # Lines that are not valid UTF-8: row_number, line (bytes as backslash escapes).
    undecodable: pl.DataFrame = field(default_factory=_no_lines)
    # Columns of a type that cannot be read as text (name -> type), left out of ``rows``.
    unsupported: dict[str, str] = field(default_factory=dict)

    @property
    def rows_read(self) -> int:
        """Every data row in the file, well-formed or not."""
        return self.rows.height + self.ragged.height + self.undecodable.height


def _scan_bytes(path: Path) -> tuple[bool, bool]:
    """``(valid_utf8, has_line_sep)`` of the file, read in chunks (bounded memory)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    valid, has_sep = True, False
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            has_sep = has_sep or _LINE_SEP.encode() in chunk
            if valid:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    valid = False
            if not valid and has_sep:
                break
    if valid:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            valid = False
    return valid, has_sep


def _check_encoding(path: Path) -> None:
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(_UTF16_BOMS):
        msg = (
            f"{path}: the file is UTF-16/UTF-32 encoded (byte-order mark); "
            "save it as UTF-8 to read it"
        )
        raise SourceError(msg)
    # UTF-16 without a byte-order mark: every other byte of the first line's ASCII is NUL.
    first = head.split(b"\n", 1)[0]
    if len(first) >= 2 and first.count(0) * 3 >= len(first):
        msg = (
            f"{path}: the file is not UTF-8 text (its first line is mostly NUL bytes, "
            "as in UTF-16); save it as UTF-8"
        )
        raise SourceError(msg)


def _lines_fast(path: Path) -> pl.Series:
    return (
        pl.read_csv(
            path,
            has_header=False,
            separator=_LINE_SEP,
            quote_char=None,
            new_columns=["line"],
            schema_overrides={"line": pl.String},
            infer_schema=False,
        )
        .get_column("line")
        .fill_null("")
    )


def _lines_slow(path: Path) -> tuple[pl.Series, pl.Series]:
    """Lines decoded one by one: the text, and whether the line was valid UTF-8."""
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    texts: list[str] = []
    valid: list[bool] = []
    for raw in data.split(b"\n"):
        try:
            texts.append(raw.decode("utf-8"))
            valid.append(True)
        except UnicodeDecodeError:
            texts.append(raw.decode("utf-8", errors="backslashreplace"))
            valid.append(False)
    if data.endswith(b"\n"):  # the terminator of the last line starts no line
        texts.pop()
        valid.pop()
    return pl.Series("line", texts, dtype=pl.String), pl.Series("valid", valid, dtype=pl.Boolean)


def _unterminated(text: str, separator: str) -> bool:
    """Whether ``text`` ends inside a quoted field (the csv module, non-strict, accepts that)."""
    try:
        list(csv.reader(io.StringIO(text + "\n"), delimiter=separator, strict=True))
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _restore(fields: list[str]) -> list[str]:
    return [f.replace(_CR, "\r") for f in fields]


def _one_line(line: str, separator: str) -> list[str]:
    """The fields of one line alone; none when csv refuses it or it ends inside a quote."""
    text = line.replace("\r", _CR)
    try:
        fields = next(csv.reader([text], delimiter=separator), [])
    except csv.Error:  # e.g. a field over the csv module's size limit
        return []
    return [] if _unterminated(text, separator) else _restore(fields)


def _parse_lines(lines: list[str], separator: str) -> list[list[str]]:
    """One record per line (``[]`` for a line csv refuses), in one csv pass when it can."""
    try:
        rows = list(csv.reader((ln.replace("\r", _CR) for ln in lines), delimiter=separator))
    except csv.Error:
        rows = []
    if len(rows) != len(lines):  # a quote left open ran into the next line, or csv refused one
        return [_one_line(ln, separator) for ln in lines]
    return [_restore(r) for r in rows]


def _records(lines: list[str], separator: str, width: int) -> Iterator[tuple[int, str, list[str]]]:
    """``(first line index, text, fields)`` per CSV record; a quoted field may span lines.

    A record over several lines that does not come out ``width`` fields wide was
    most likely one stray quote swallowing the lines after it: those lines are
    then read one by one, so one bad row cannot take good rows with it. A record
    that ends inside a quoted field at the end of the file, or that csv refuses,
    gets no fields (it goes to the quarantine whole).
    """
    pending: list[int] = []

    def feed() -> Iterator[str]:
        for i, line in enumerate(lines):
            pending.append(i)
            yield line.replace("\r", _CR) + "\n"

    reader = csv.reader(feed(), delimiter=separator)
    while True:
        try:
            fields: list[str] | None = _restore(next(reader))
        except StopIteration:
            return
        except csv.Error:  # the reader goes on with the next line
            fields = None
        start, n = pending[0], len(pending)
        pending.clear()
        if fields is None or (n > 1 and len(fields) != width):
            for k in range(start, start + n):
                if lines[k]:
                    yield k, lines[k], _one_line(lines[k], separator)
            continue
        text = "\n".join(lines[start : start + n])
        if start + n == len(lines) and _unterminated(text.replace("\r", _CR), separator):
            yield start, text, []
        elif fields:  # a blank line is no record
            yield start, text, fields


def _read_lines(path: Path) -> tuple[pl.Series, pl.Series]:
    """The file's lines (without a trailing CR) and whether each is valid UTF-8.

    A valid UTF-8 file without the byte :data:`_LINE_SEP` is read by Polars in one go;
    anything else (or whatever trips that reader) line by line.
    """
    valid_utf8, has_sep = _scan_bytes(path)
    lines: pl.Series | None = None
    if valid_utf8 and not has_sep:
        try:
            lines = _lines_fast(path)
        except pl.exceptions.NoDataError as exc:
            msg = f"source file is empty: {path}"
            raise SourceError(msg) from exc
        except pl.exceptions.PolarsError:
            lines = None  # whatever trips the fast reader, the line-by-line one reads
    if lines is not None:
        valid = pl.repeat(True, lines.len(), eager=True, dtype=pl.Boolean).alias("valid")
    else:
        lines, valid = _lines_slow(path)
    return lines.str.strip_suffix("\r"), valid


def _header(path: Path, header_line: str, separator: str) -> list[str]:
    """The column names of the header line; each must be there once."""
    columns = [c.strip() for c in _one_line(header_line, separator)]
    if not columns:
        msg = f"{path}: the header line cannot be read as CSV: {header_line[:80]!r}"
        raise SourceError(msg)
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        msg = f"{path}: the header repeats column name(s) {dupes}; rename them so each is unique"
        raise SourceError(msg)
    return columns


def read_delimited(path: Path, *, separator: str = ",", has_header: bool = True) -> RawTable:
    """Read a delimited text file into string columns, keeping ragged and undecodable rows apart.

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
        The file is missing, empty, not UTF-8 text, or its header repeats a name.
    """
    if not path.is_file():
        msg = f"source file not found: {path}"
        raise SourceError(msg)
    if len(separator) != 1:
        msg = f"separator must be one character. Got {separator!r} instead."
        raise SourceError(msg)
    _check_encoding(path)
    lines, valid = _read_lines(path)
    frame = pl.DataFrame({"line": lines, "valid": valid}).with_row_index("row_number", offset=0)
    # Blank lines are no rows, but stay in ``frame``: inside a quoted field they are text.
    filled = frame.filter(pl.col("line").str.len_chars() > 0)
    if filled.height == 0:
        msg = f"source file is empty: {path}"
        raise SourceError(msg)
    _check_decodable(path, filled.get_column("valid"), has_header=has_header)
    header_at = -1  # data rows are numbered from 1 by line after the header (blank lines count)
    if has_header:
        header_at = int(filled.get_column("row_number")[0])
        columns = _header(path, filled.get_column("line")[0], separator)
        frame = frame.filter(pl.col("row_number") > header_at)
        n_fields = len(columns)
    else:
        columns = []
        n_fields = 0
    frame = frame.with_columns((pl.col("row_number") - header_at).cast(pl.Int64))
    undecodable = frame.filter(~pl.col("valid")).select("row_number", "line")
    frame = frame.filter(pl.col("valid")).drop("valid")
    all_fields = _split_fields(frame, separator, n_fields if has_header else None)
    if not has_header:
        # Without a header the most common field count is the file's width.
        n_fields = int(all_fields.get_column("_n").mode().sort()[-1]) if all_fields.height else 0
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
    return RawTable(path=path, columns=columns, rows=rows, ragged=ragged, undecodable=undecodable)


def _check_decodable(path: Path, valid: pl.Series, *, has_header: bool) -> None:
    """One undecodable row is the row's problem; an undecodable header or most lines, the file's."""
    n_bad = valid.len() - int(valid.sum())
    header_bad = has_header and not valid[0]
    if n_bad and (header_bad or 2 * n_bad > valid.len()):
        where = " (the header among them)" if header_bad else ""
        msg = (
            f"{path}: {n_bad:,} of {valid.len():,} lines are not valid UTF-8{where}; "
            "the file is in another encoding: save it as UTF-8"
        )
        raise SourceError(msg)


def _split_fields(frame: pl.DataFrame, separator: str, width: int | None) -> pl.DataFrame:
    """``row_number, line, fields, _n`` per record of ``frame`` (``row_number, line``)."""
    quotes = pl.col("line").str.count_matches('"', literal=True)
    frame = frame.with_columns(quotes.alias("_quotes"))
    if frame.filter(pl.col("_quotes") % 2 == 1).height:
        # An odd number of quotes may open a field that goes on on the next line:
        # let the csv module read the records in order (slower, exact).
        if width is None:  # no header: the most common number of separators decides
            counts = frame.filter(pl.col("line").str.len_chars() > 0).get_column("line")
            seps = counts.str.count_matches(separator, literal=True) + 1
            width = int(seps.mode().sort()[-1])
        parsed = list(_records(frame.get_column("line").to_list(), separator, width))
        numbers = frame.get_column("row_number")
        all_fields = pl.DataFrame(
            {
                "row_number": pl.Series([numbers[i] for i, _, _ in parsed], dtype=pl.Int64),
                "line": pl.Series([t for _, t, _ in parsed], dtype=pl.String),
                "fields": pl.Series([f for _, _, f in parsed], dtype=pl.List(pl.String)),
            }
        )
    else:
        frame = frame.filter(pl.col("line").str.len_chars() > 0)
        plain = frame.filter(pl.col("_quotes") == 0)
        quoted = frame.filter(pl.col("_quotes") > 0)
        all_fields = plain.select(
            "row_number", "line", pl.col("line").str.split(separator).alias("fields")
        )
        if quoted.height:
            parsed_q = _parse_lines(quoted.get_column("line").to_list(), separator)
            quoted_fields = quoted.select("row_number", "line").with_columns(
                pl.Series("fields", parsed_q, dtype=pl.List(pl.String))
            )
            all_fields = pl.concat([all_fields, quoted_fields]).sort("row_number")
    return all_fields.with_columns(pl.col("fields").list.len().alias("_n"))


def _readable(dtype: pl.DataType) -> bool:
    """Whether a Parquet column type has one text form per row (not nested or binary)."""
    return not (dtype.is_nested() or dtype == pl.Binary or dtype == pl.Object)


def read_parquet_raw(path: Path) -> RawTable:
    """Read a Parquet file as string columns plus ``row_number`` (Parquet rows are never ragged).

    Columns of a nested or binary type (a list, a struct) have no one text form;
    they are left out of ``rows`` and named in ``unsupported``, so a mapping that
    needs one fails with a clear line and one that does not is unaffected.

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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = f"cannot read Parquet file {path}: {first}"
        raise SourceError(msg) from exc
    columns = list(frame.columns)
    unsupported = {c: str(frame.schema[c]) for c in columns if not _readable(frame.schema[c])}
    frame = frame.drop(list(unsupported))
    # Typed timestamps become epoch microseconds; a naive timestamp is taken as UTC.
    temporal = frozenset(c for c in frame.columns if frame.schema[c] in (pl.Datetime, pl.Date))
    rows = frame.with_columns(
        [
            pl.col(c).cast(pl.Datetime("us")).dt.epoch("us").cast(pl.String)
            if c in temporal
            else pl.col(c).cast(pl.String)
            for c in frame.columns
        ]
    ).with_row_index("row_number", offset=1)
    rows = rows.with_columns(pl.col("row_number").cast(pl.Int64))
    return RawTable(
        path=path,
        columns=columns,
        rows=rows,
        ragged=_no_lines(),
        epoch_us_columns=temporal,
        unsupported=unsupported,
    )


def require_columns(table: RawTable, wanted: list[str]) -> None:
    """Raise one clear line naming the file and the first missing or unreadable column."""
    for name in wanted:
        if name not in table.columns:
            msg = f"{table.path}: required column {name!r} is missing (columns: {table.columns})"
            raise SourceError(msg)
        if name in table.unsupported:
            msg = (
                f"{table.path}: column {name!r} has type {table.unsupported[name]}, which cannot "
                "be read as one value per row (use a column of numbers, text or timestamps)"
            )
            raise SourceError(msg)
