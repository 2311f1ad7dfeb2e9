"""Nothing lost: every input row is accepted, deduplicated, ignored or quarantined.

:class:`TableAccount` carries the counts of one table and checks the identity
``accepted + deduplicated + ignored + quarantined == rows_read`` in code.
Quarantined rows keep their original values (as JSON of the raw strings) and
one reason, the first rule they broke in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import polars as pl

from longtail.errors import StageError
from longtail.ingest.reader import RawTable
from longtail.schema import QUARANTINE

__all__ = [
    "REASONS",
    "TableAccount",
    "quarantine_rows",
    "split_rejects",
]

# Reasons, in the order rules are applied (a row gets the first it breaks).
WRONG_FIELD_COUNT: Final = "wrong_field_count"
INVALID_UTF8: Final = "invalid_utf8"
MISSING_ID: Final = "missing_id"
INVALID_ID: Final = "invalid_id"
UNPARSABLE_TIMESTAMP: Final = "unparsable_timestamp"
TIMESTAMP_OUT_OF_RANGE: Final = "timestamp_out_of_range"
FUTURE_TIMESTAMP: Final = "future_timestamp"
OUTSIDE_WINDOW: Final = "outside_window"
UNKNOWN_EVENT: Final = "unknown_event"
UNPARSABLE_PRICE: Final = "unparsable_price"
NEGATIVE_PRICE: Final = "negative_price"
PRICE_OUT_OF_RANGE: Final = "price_out_of_range"
UNPARSABLE_VALUE: Final = "unparsable_value"
REASONS: Final = (
    WRONG_FIELD_COUNT,
    INVALID_UTF8,
    MISSING_ID,
    INVALID_ID,
    UNPARSABLE_TIMESTAMP,
    TIMESTAMP_OUT_OF_RANGE,
    FUTURE_TIMESTAMP,
    OUTSIDE_WINDOW,
    UNKNOWN_EVENT,
    UNPARSABLE_PRICE,
    NEGATIVE_PRICE,
    PRICE_OUT_OF_RANGE,
    UNPARSABLE_VALUE,
)


@dataclass
class TableAccount:
    """Row accounting for one canonical table."""

    table: str
    rows_read: int = 0
    accepted: int = 0
    deduplicated: int = 0
    ignored: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)

    def add_quarantined(self, frame: pl.DataFrame) -> None:
        """Count quarantined rows by reason from a frame in the quarantine schema."""
        if frame.height == 0:
            return
        for reason, n in frame.group_by("reason").len().iter_rows():
            self.quarantined[reason] = self.quarantined.get(reason, 0) + int(n)

    @property
    def quarantined_total(self) -> int:
        """All quarantined rows, every reason."""
        return sum(self.quarantined.values())

    def check(self) -> None:
        """Raise when the counts do not add up to the rows read (a bug, never the input's fault)."""
        total = self.accepted + self.deduplicated + self.ignored + self.quarantined_total
        if total != self.rows_read:
            msg = (
                f"ingest accounting broken for {self.table!r}: accepted {self.accepted} + "
                f"deduplicated {self.deduplicated} + ignored {self.ignored} + quarantined "
                f"{self.quarantined_total} = {total} != rows read {self.rows_read}"
            )
            raise StageError(msg)

    def to_dict(self) -> dict[str, object]:
        """The JSON form used in ``ingest_summary.json``."""
        return {
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "deduplicated": self.deduplicated,
            "ignored": self.ignored,
            "quarantined": dict(sorted(self.quarantined.items())),
        }


def quarantine_rows(
    raw: pl.DataFrame,
    *,
    reason: pl.Expr | str,
    table: str,
    source_file: str,
    raw_columns: list[str],
) -> pl.DataFrame:
    """Turn rejected raw rows into quarantine rows.

    Parameters
    ----------
    raw
        Rejected rows: the raw string columns plus ``row_number``.
    reason
        The reason, as a literal or an expression over ``raw``.
    table, source_file
        Where the rows were headed and where they came from.
    raw_columns
        The original columns, kept as a JSON object of strings in ``raw``.
    """
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    cols = [c for c in raw_columns if c in raw.columns]
    raw_expr = (
        pl.struct([pl.col(c).cast(pl.String) for c in cols]).struct.json_encode()
        if cols
        else pl.lit("{}")
    )
    return raw.select(
        pl.lit(table).alias("table"),
        pl.lit(source_file).alias("source_file"),
        pl.col("row_number").cast(pl.Int64),
        reason_expr.cast(pl.String).alias("reason"),
        raw_expr.alias("raw"),
    ).cast(QUARANTINE)  # type: ignore[arg-type]


def split_rejects(
    raw: RawTable, rows: pl.DataFrame, reason: pl.Expr, *, table: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply a reason expression to parsed rows; return the good rows and every reject.

    Parameters
    ----------
    raw
        The source the rows came from (its ragged and undecodable rows are rejected too).
    rows
        Parsed rows of ``raw`` (raw string columns plus parsed helper columns).
    reason
        Null for a good row, else the first rule it breaks.
    table
        The canonical table the rows were headed for.

    Returns
    -------
    good
        Rows whose reason is null (still carrying the helper columns).
    rejects
        Quarantine rows: the ragged and undecodable lines and the rows with a reason.
    """
    tagged = rows.with_columns(reason.alias("_reason"))
    source_file = str(raw.path)
    rejects = pl.concat(
        [
            quarantine_rows(
                raw.ragged, reason=WRONG_FIELD_COUNT, table=table,
                source_file=source_file, raw_columns=["line"],
            ),
            quarantine_rows(
                raw.undecodable, reason=INVALID_UTF8, table=table,
                source_file=source_file, raw_columns=["line"],
            ),
            quarantine_rows(
                tagged.filter(pl.col("_reason").is_not_null()), reason=pl.col("_reason"),
                table=table, source_file=source_file, raw_columns=raw.columns,
            ),
        ]
    )  # fmt: skip
    return tagged.filter(pl.col("_reason").is_null()).drop("_reason"), rejects
