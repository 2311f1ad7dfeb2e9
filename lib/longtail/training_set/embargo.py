"""The embargo: no label window crosses a split boundary.

A view at ``t`` is labelled by the target events in ``(t, t + horizon]``. A
train row whose window reaches the first validation row shares future events
with validation (the same purchase can label a train row and, through the
user's history, sit in a validation row's label window), and validation drives
early stopping, calibration and the tune selection, so every one of them would
be optimistic; likewise validation into test. The next split's start is its
first labelled row in the data (not a configured date), so the rule holds
however :mod:`longtail.training_set.split` draws its boundaries: a window that
ends before the next split's first row cannot hold any event that split labels
or uses.

Two ways to honour it (``[split] embargo``):

``drop``
    Drop every row of a split whose window end ``t + horizon`` is at or after
    the next split's start. Each row keeps its full window, at the cost of the
    last ``horizon`` of train and of validation.
``truncate``
    Keep the rows and cut their windows at the next split's start: a row whose
    positive came at or after it becomes a negative. No label sees an event of
    the next split either, but rows near a boundary had less time to convert,
    so their labels lean negative (the counts say how many).
``auto`` (default)
    ``drop`` when train and validation each last at least
    :data:`DROP_MIN_SPANS` horizons (dropping keeps a third of each or more),
    else ``truncate``. A log of 9 days cannot hold its 72 h unlabelled tail
    plus two dropped 72 h windows (9 - 3 - 2 x 3 = 0 days of rows), but it can
    hold three splits with cut windows.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import Final, Literal

import polars as pl

from longtail import schema as S
from longtail.config import SplitConfig
from longtail.errors import StageError
from longtail.training_set.split import SplitPlan

__all__ = ["DROP_MIN_SPANS", "EmbargoStats", "apply_embargo", "days_needed", "embargo_mode"]

#: Each split whose rows are cut at the next split's start, and that next split.
_NEXT = (("train", "validation"), ("validation", "test"))

#: ``auto`` drops only when train and validation each last this many horizons.
DROP_MIN_SPANS: Final = 1.5


@dataclass(frozen=True)
class EmbargoStats:
    """What the embargo removed from one split."""

    split: str
    next_split: str
    next_start: dt.datetime | None
    rows_before: int
    rows_dropped: int
    positives_dropped: int
    #: ``"drop"`` or ``"truncate"``.
    mode: str = "drop"
    #: Rows kept with their window cut at ``next_start`` (``truncate`` only).
    rows_cut: int = 0

    def line(self) -> str:
        """One printable line for the training-set summary."""
        head = f"embargo    {self.split} "
        if self.mode == "truncate":
            return head + (
                f"label windows cut={self.rows_cut:,} of {self.rows_before:,} "
                f"(positives lost {self.positives_dropped:,}): window reaches {self.next_split}"
            )
        return head + (
            f"rows dropped={self.rows_dropped:,} of {self.rows_before:,} "
            f"(positives {self.positives_dropped:,}): label window reaches {self.next_split}"
        )

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


def embargo_mode(
    cfg: SplitConfig, *, horizon: dt.timedelta, plan: SplitPlan | None
) -> Literal["drop", "truncate"]:
    """The embargo to apply: the configured one, or for ``auto`` the one the data can hold.

    ``auto`` drops when train (from the bulk's start) and validation each last
    :data:`DROP_MIN_SPANS` horizons, by the split plan's boundaries; without a
    plan (hand-built rows) it drops.
    """
    if cfg.embargo != "auto":
        return cfg.embargo
    if plan is None:
        return "drop"
    train = plan.validation_start - plan.bulk_start
    validation = plan.test_start - plan.validation_start
    return "drop" if min(train, validation) >= DROP_MIN_SPANS * horizon else "truncate"


def apply_embargo(
    frame: pl.DataFrame,
    *,
    horizon: dt.timedelta,
    cfg: SplitConfig,
    plan: SplitPlan | None = None,
) -> tuple[pl.DataFrame, list[EmbargoStats]]:
    """Drop, or cut the windows of, train and validation rows that reach the next split.

    Long because its parameters are documented; one loop applies the mode to each split and its
    successor.

    Parameters
    ----------
    frame
        Labelled rows with ``event_time``, ``label`` and ``split`` (from
        :func:`longtail.training_set.assign_splits`), and ``label_time`` (when
        the positive happened) for ``truncate``.
    horizon
        The label horizon (``labels.horizon_hours``).
    cfg
        The split settings: ``embargo`` says how (see the module docstring).
    plan
        The split plan, for ``auto`` to measure the splits' lengths.

    Returns
    -------
    tuple
        The kept rows (same columns and order, less ``label_time``) and one
        :class:`EmbargoStats` per embargoed split (train, validation).

    Raises
    ------
    StageError
        A column is missing, or ``drop`` leaves a split without rows: the data
        is too short for three splits plus the embargo.
    """
    mode = embargo_mode(cfg, horizon=horizon, plan=plan)
    need = (S.EVENT_TIME, S.LABEL, S.SPLIT) + ((S.LABEL_TIME,) if mode == "truncate" else ())
    missing = [c for c in need if c not in frame.columns]
    if missing:
        msg = f"embargo needs column(s) {missing}. Got {frame.columns!r} instead."
        raise StageError(msg)
    t = pl.col(S.EVENT_TIME)
    drop = pl.lit(False)
    lost = pl.lit(False)
    stats = []
    for split, nxt in _NEXT:
        start = frame.filter(pl.col(S.SPLIT) == nxt)[S.EVENT_TIME].min()
        part = frame.filter(pl.col(S.SPLIT) == split)
        if not isinstance(start, dt.datetime):
            stats.append(EmbargoStats(split, nxt, None, part.height, 0, 0, mode))
            continue
        reaches = (pl.col(S.SPLIT) == split) & (t + horizon >= start)
        crosses = part.filter(t + horizon >= start)
        if mode == "drop":
            positives = int(crosses[S.LABEL].cast(pl.Int64).sum())
            stats.append(EmbargoStats(split, nxt, start, part.height, crosses.height, positives))
            drop = drop | reaches
            continue
        # A positive of a cut window is lost when it came at or after the next start.
        late = reaches & (pl.col(S.LABEL) == 1) & (pl.col(S.LABEL_TIME) >= start)
        positives = frame.select(late.sum()).item()
        stats.append(
            EmbargoStats(split, nxt, start, part.height, 0, int(positives), mode, crosses.height)
        )
        lost = lost | late
    kept = frame.filter(~drop)
    if mode == "truncate":
        label = pl.col(S.LABEL)
        cut = pl.when(lost).then(0).otherwise(label).cast(kept[S.LABEL].dtype)
        kept = kept.with_columns(cut.alias(S.LABEL))
    if S.LABEL_TIME in kept.columns:
        kept = kept.drop(S.LABEL_TIME)
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
            '(or [split] embargo = "truncate", or a shorter labels.horizon_hours)'
        )
        raise StageError(msg)
    return kept, stats
