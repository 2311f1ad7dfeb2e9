"""The run history: one JSON record per run date, for row-count tolerance and drift.

``DATA_DIR/reports/validation_history.jsonl`` holds one line per date, sorted by
date; a rerun of a date replaces its line, so reruns are idempotent. The
previous run of a date is the latest *passing* record of an earlier date: a
failed run never becomes the baseline that the next day is compared with.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Final

from longtail.errors import StageError
from longtail.io import write_text

__all__ = ["HISTORY_FILE", "previous_record", "read_history", "record_run"]

HISTORY_FILE: Final = "validation_history.jsonl"


def read_history(path: Path) -> list[dict[str, Any]]:
    """Read every record, oldest first; a missing file is an empty history.

    Raises
    ------
    StageError
        A line is not a JSON object with a ``date``; the message names the line.
    """
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            dt.date.fromisoformat(record["date"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            msg = f"{path}:{number}: not a history record with a 'date' ({exc})"
            raise StageError(msg) from exc
        records.append(record)
    return sorted(records, key=lambda r: str(r["date"]))


def previous_record(records: list[dict[str, Any]], *, date: dt.date) -> dict[str, Any] | None:
    """Return the latest passing record of a date before ``date``, or None."""
    earlier = [r for r in records if r["date"] < date.isoformat() and r.get("passed")]
    return earlier[-1] if earlier else None


def record_run(path: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Insert or replace the record of ``record["date"]`` and rewrite the file atomically.

    Returns
    -------
    list of dict
        The whole history after the write, oldest first.
    """
    records = [r for r in read_history(path) if r["date"] != record["date"]]
    records.append(record)
    records.sort(key=lambda r: str(r["date"]))
    write_text("".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records), path)
    return records
