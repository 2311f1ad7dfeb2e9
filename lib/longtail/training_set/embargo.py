"""The embargo: no label window crosses a split boundary.

A view at ``t`` is labelled by the target events in ``(t, t + horizon]``. A
train row whose window reaches the first validation row shares future events
with validation (the same purchase can label a train row and, through the
user's history, sit in a validation row's label window), and validation drives
early stopping, calibration and the tune selection, so every one of them would
be optimistic; likewise validation into test. The embargo drops every row of
a split whose window end ``t + horizon`` is at or after the start of the next
split. The start is the next split's first labelled row in the data (not a
configured date), so the rule holds however :mod:`longtail.training_set.split`
draws its boundaries: a window that ends before the next split's first view
cannot hold any event that split labels or uses.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass

import polars as pl

from longtail import schema as S
from longtail.config import SplitConfig
from longtail.errors import StageError

__all__ = ["EmbargoStats", "apply_embargo", "days_needed"]

#: Each split whose rows are cut at the next split's start, and that next split.
_NEXT = (("train", "validation"), ("validation", "test"))


@dataclass(frozen=True)
class EmbargoStats:
    """What the embargo removed from one split."""

    split: str
    next_split: str
    next_start: dt.datetime | None
    rows_before: int
    rows_dropped: int
    positives_dropped: int

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (times as ISO strings)."""
        out = asdict(self)
        out["next_start"] = self.next_start.isoformat() if self.next_start else None
        return out


def days_needed(*, horizon: dt.timedelta, cfg: SplitConfig) -> int:
    """Days of events needed so that train and validation each outlast the embargo.

    With fractional splits the validation share of the labelled span, and the
    train share, must each be longer than the horizon; the horizon itself comes
    on top (the last ``horizon`` of events cannot be labelled). With configured
    dates the fractions do not apply and the same bound is a rough guide.
    """
    hours = horizon.total_seconds() / 3600
    train_share = max(1.0 - cfg.validation_fraction - cfg.test_fraction, 1e-9)
    shortest = min(cfg.validation_fraction, train_share)
    return math.ceil((hours / shortest + hours) / 24) + 1


def apply_embargo(
    frame: pl.DataFrame, *, horizon: dt.timedelta, cfg: SplitConfig
) -> tuple[pl.DataFrame, list[EmbargoStats]]:
    """Drop train and validation rows whose label window reaches the next split's start.

    Parameters
    ----------
    frame
        Labelled rows with ``event_time``, ``label`` and ``split`` (from
        :func:`longtail.training_set.assign_splits`).
    horizon
        The label horizon (``labels.horizon_hours``).
    cfg
        The split settings, only to say how many days would be enough.

    Returns
    -------
    tuple
        The kept rows (same columns, same order) and one :class:`EmbargoStats`
        per embargoed split (train, validation).

    Raises
    ------
    StageError
        A split lacks its column, or keeps no row after the embargo: the data
        is too short for three splits plus the embargo.
    """
    missing = [c for c in (S.EVENT_TIME, S.LABEL, S.SPLIT) if c not in frame.columns]
    if missing:
        msg = f"embargo needs column(s) {missing}. Got {frame.columns!r} instead."
        raise StageError(msg)
    t = pl.col(S.EVENT_TIME)
    drop = pl.lit(False)
    stats = []
    for split, nxt in _NEXT:
        start = frame.filter(pl.col(S.SPLIT) == nxt)[S.EVENT_TIME].min()
        part = frame.filter(pl.col(S.SPLIT) == split)
        if not isinstance(start, dt.datetime):
            stats.append(EmbargoStats(split, nxt, None, part.height, 0, 0))
            continue
        crosses = part.filter(t + horizon >= start)
        stats.append(
            EmbargoStats(
                split=split,
                next_split=nxt,
                next_start=start,
                rows_before=part.height,
                rows_dropped=crosses.height,
                positives_dropped=int(crosses[S.LABEL].cast(pl.Int64).sum()),
            )
        )
        drop = drop | ((pl.col(S.SPLIT) == split) & (t + horizon >= start))
    kept = frame.filter(~drop)
    empty = [s.split for s in stats if s.rows_before - s.rows_dropped == 0]
    if empty:
        first, last = frame[S.EVENT_TIME].min(), frame[S.EVENT_TIME].max()
        span = (
            (last - first).total_seconds() / 86400
            if isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
            else 0.0
        )
        hours = horizon.total_seconds() / 3600
        msg = (
            f"the data is too short: after the {hours:g} h label embargo split(s) {empty} keep "
            f"no rows; labelled views span {span:.1f} days and three splits plus the embargo "
            f"need at least {days_needed(horizon=horizon, cfg=cfg)} days of events "
            "(or a shorter labels.horizon_hours)"
        )
        raise StageError(msg)
    return kept, stats
