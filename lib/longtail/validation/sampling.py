"""Validate a big derived table on a seeded sample where a sample can answer, the rest exactly.

Great Expectations' pandas engine costs a pass per expectation over a pandas copy
of the table; on the snapshot grids (one row per entity and day, with a list
column of recent items) that is most of a daily run's gate time at 10M events.
The checks split in two:

* **exact**, on the whole table but only the columns they read: the row count,
  and every check whose columns are all keys (entity or training keys, the
  snapshot time, the label, the split): key nulls, uniqueness of the keys,
  time window, not-in-the-future, freshness, label values and the label rate;
* **sampled**, on a seeded uniform sample of ``sample_rows`` rows (every column):
  the checks of feature columns (types, value ranges, sets) and the column set.
  A row-level violation shared by a fraction ``p`` of the rows goes unseen with
  probability ``(1 - p) ** n``: with ``n = 200,000`` rows, any ``p`` above
  ``3 / n = 1.5e-5`` is caught with 95% probability (the rule of three), and the
  gate's output says which checks were sampled and at what size.

Only tables the pipeline derives from already-validated events are sampled
(feature tables, training splits); canonical events and items are always
validated whole, and a table at or under ``sample_rows`` rows is never sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import great_expectations as gx
import polars as pl

__all__ = ["SAMPLE_SUFFIX", "SampledSuite", "detection_rate", "split_suite"]

#: Suffix of the sampled half's suite name (merged back under the table's name).
SAMPLE_SUFFIX: Final = "__sample"


@dataclass(frozen=True)
class SampledSuite:
    """What :func:`split_suite` sampled of one table."""

    suite: str
    rows: int
    sample_rows: int
    checks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (in the gate summary's outcome of the table)."""
        return {
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "checks": list(self.checks),
            "detects_rate_above": detection_rate(self.sample_rows),
        }

    def line(self) -> str:
        """One printable line: which checks, on how many rows, what they can miss."""
        return (
            f"{self.suite}: {len(self.checks)} check(s) on a seeded sample of "
            f"{self.sample_rows:,} of {self.rows:,} rows (a violation rate above "
            f"{detection_rate(self.sample_rows):.1e} is caught with 95% probability); "
            "the rest exactly on the whole table"
        )


def detection_rate(n: int) -> float:
    """The violation rate a sample of ``n`` rows catches with 95% probability (3 / n)."""
    return 3.0 / max(n, 1)


def _columns(expectation: Any) -> tuple[list[str], bool]:
    """(columns the expectation reads, whether it needs every column)."""
    kwargs = expectation.configuration.kwargs
    if "column_set" in kwargs:
        # "These columns are there" reads only them; "exactly these" needs every column.
        return list(kwargs["column_set"]), bool(kwargs.get("exact_match", True))
    if "column_list" in kwargs:
        return list(kwargs["column_list"]), False
    if "column" in kwargs:
        return [str(kwargs["column"])], False
    return [], False


def _label(expectation: Any) -> str:
    check = str((expectation.meta or {}).get("check", expectation.expectation_type))
    cols, _ = _columns(expectation)
    return f"{check}({', '.join(cols)})" if cols else check


def split_suite(
    suite: gx.ExpectationSuite,
    frame: pl.DataFrame,
    *,
    exact_columns: Sequence[str],
    sample_rows: int | None,
    seed: int,
) -> tuple[list[tuple[gx.ExpectationSuite, pl.DataFrame]], SampledSuite | None]:
    """Pairs to validate for one table: whole, or an exact half and a sampled half.

    Parameters
    ----------
    suite, frame
        The table's suite and the whole table.
    exact_columns
        The key columns: a check reading only these runs on the whole table.
    sample_rows
        Tables with more rows are split; None never splits.
    seed
        Seed of the uniform row sample (reruns validate the same rows).

    Returns
    -------
    pairs, sampled
        ``[(suite, frame)]`` and None when not split; else the exact suite (same
        name) on ``frame`` narrowed to the columns it reads, the sampled suite
        (named with :data:`SAMPLE_SUFFIX`) on the sample, and what was sampled.
    """
    if sample_rows is None or frame.height <= sample_rows:
        return [(suite, frame)], None
    keys = set(exact_columns)
    exact, sampled = [], []
    for expectation in suite.expectations:
        cols, needs_all = _columns(expectation)
        if not needs_all and set(cols) <= keys:
            exact.append(expectation)
        else:
            sampled.append(expectation)
    if not sampled:
        return [(suite, frame)], None
    pairs: list[tuple[gx.ExpectationSuite, pl.DataFrame]] = []
    if exact:
        read = sorted({c for e in exact for c in _columns(e)[0]} & set(frame.columns))
        # A frame needs one column for its rows to count; the first key does.
        narrow = frame.select(read or frame.columns[:1])
        pairs.append((_copy(suite.name, exact), narrow))
    sample = frame.sample(n=sample_rows, seed=seed)
    pairs.append((_copy(suite.name + SAMPLE_SUFFIX, sampled), sample))
    info = SampledSuite(
        suite=suite.name,
        rows=frame.height,
        sample_rows=sample_rows,
        checks=tuple(_label(e) for e in sampled),
    )
    return pairs, info


def _copy(name: str, expectations: list[Any]) -> gx.ExpectationSuite:
    """A new suite of fresh copies (an expectation belongs to one suite)."""
    copies = [
        type(e)(meta=e.meta, severity=e.severity, **e.configuration.kwargs) for e in expectations
    ]
    return gx.ExpectationSuite(name=name, expectations=copies)
