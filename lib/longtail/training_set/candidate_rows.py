"""Training rows from the population the ranker scores: candidate sets at past snapshot times.

The scoring job ranks, at time T = D + 1 00:00 UTC, the candidates of every
served user (their own history, co-views, categories, popular, tail) for what
they will do next. Rows drawn from past *views* are another population (the
user already looked at the item, minutes before buying it), so a ranker fitted
on them and calibrated on them scores items the user never viewed by guesswork.
Here every snapshot time T (00:00 UTC, every ``snapshot_every_days``) replays
candidate generation exactly as scoring would, from events strictly before T,
for up to ``users_per_snapshot`` served users (``eval_users_per_snapshot`` in validation
and test; a seeded draw per T), and labels a
(user, item, T) row positive when the user does the target event on the item in
``[T, T + horizon)``. The label window must end by the cutoff.

Rows are split by T *before* anything is sampled, and only in the train split
are negatives thinned (kept with probability ``train_negative_rate``, by a hash
of the row, so reruns keep the same rows): validation and test keep the true
distribution that calibration and evaluation need. The thinning shifts the
train prior by a known factor; calibration on validation corrects it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from longtail import schema as S
from longtail.candidates import CandidatePlan, CoviewIndex, candidate_config
from longtail.config import Config
from longtail.errors import StageError
from longtail.training_set.split import SplitPlan, assign_splits, plan_splits

__all__ = ["CandidateRows", "candidate_rows", "snapshot_times"]

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class CandidateRows:
    """Labelled candidate rows (with ``split``) and what building them kept."""

    rows: pl.DataFrame
    snapshots: int
    generated: dict[str, int]
    kept: dict[str, int]
    train_negative_rate: float
    plan: SplitPlan


def snapshot_times(
    first: dt.datetime, cutoff: dt.datetime, *, horizon: dt.timedelta, every_days: int
) -> list[dt.datetime]:
    """00:00 UTC times after the first event day whose label window ends by ``cutoff``.

    Counted back from the last possible one, so the newest usable time is always in.
    """
    last = cutoff - horizon
    last = dt.datetime.combine(last.date(), dt.time(), tzinfo=dt.UTC)
    start = dt.datetime.combine(first.date() + DAY, dt.time(), tzinfo=dt.UTC)
    out = []
    t = last
    while t >= start:
        out.append(t)
        t -= dt.timedelta(days=every_days)
    return sorted(out)


def _keep_fraction(keys: pl.DataFrame, *, seed: int, share: float) -> pl.Series:
    """A reproducible uniform draw per row (hash of the keys and the seed) below ``share``."""
    h = keys.select(pl.struct(pl.all()).hash(seed=seed % (2**63)).alias("h"))["h"]
    return (h.cast(pl.Float64) / float(2**64)) < share


def _snapshot_times(
    seen: pl.DataFrame, cfg: Config, *, cutoff: dt.datetime, horizon: dt.timedelta
) -> list[dt.datetime]:
    """The snapshot times whose label window ends before ``cutoff``.

    Raises
    ------
    StageError
        No events before the cutoff, or no snapshot time fits.
    """
    lab = cfg.labels
    if seen.is_empty():
        msg = "no events before the cutoff to build candidate rows from"
        raise StageError(msg)
    first = seen[S.EVENT_TIME].min()
    if not isinstance(first, dt.datetime):
        msg = f"canonical column {S.EVENT_TIME!r} must be a datetime"
        raise StageError(msg)
    times = snapshot_times(first, cutoff, horizon=horizon, every_days=lab.snapshot_every_days)
    if not times:
        msg = (
            f"no snapshot time has its {lab.horizon_hours:g} h label window before "
            f"{cutoff.isoformat()}: the data needs more days"
        )
        raise StageError(msg)
    return times


def _labelled_at(
    seen: pl.DataFrame,
    items: pl.DataFrame,
    targets: pl.DataFrame,
    cfg: Config,
    *,
    at: dt.datetime,
    split: str,
    horizon: dt.timedelta,
    coview: CoviewIndex,
) -> pl.DataFrame:
    """The candidates of (a seeded sample of) the users served at ``at``, labelled.

    A candidate is positive when its user has a target event on it in
    ``[at, at + horizon)``.
    """
    lab = cfg.labels
    served = seen.filter(pl.col(S.EVENT_TIME) < at)[S.USER_ID].unique().sort()
    n_users = lab.users_per_snapshot if split == "train" else lab.eval_users_per_snapshot
    if served.len() > n_users:
        rng = np.random.default_rng([cfg.seed, at.toordinal()])
        pick = np.sort(rng.choice(served.len(), n_users, replace=False))
        served = served.gather(pick)
    plan = CandidatePlan(
        seen,
        items,
        served,
        as_of=at,
        cfg=candidate_config(cfg.score),
        seed=cfg.seed,
        head_share=cfg.features.head_share,
        torso_share=cfg.features.torso_share,
        users_per_chunk=max(served.len(), 1),
        coview=coview,
    )
    (cands,) = plan
    window = (
        targets.filter((pl.col(S.EVENT_TIME) >= at) & (pl.col(S.EVENT_TIME) < at + horizon))
        .group_by(S.USER_ID, S.ITEM_ID)
        .agg(pl.col(S.EVENT_TIME).min().alias(S.LABEL_TIME))
    )
    return cands.join(
        window.with_columns(pl.lit(1, pl.Int8).alias(S.LABEL)),
        on=[S.USER_ID, S.ITEM_ID],
        how="left",
    ).with_columns(
        pl.col(S.LABEL).fill_null(0),
        pl.lit(at).dt.cast_time_unit("us").alias(S.EVENT_TIME),
        pl.lit(split).alias(S.SPLIT),
    )


def candidate_rows(
    events: pl.DataFrame, items: pl.DataFrame, cfg: Config, *, cutoff: dt.datetime
) -> CandidateRows:
    """Build the labelled candidate rows of every snapshot time before ``cutoff``.

    Returns
    -------
    CandidateRows
        ``user_id, item_id, event_time`` (= T), ``label``, ``split``, the candidate
        ``source`` and the pair features.

    Raises
    ------
    StageError
        No snapshot time fits before the cutoff, or no row could be labelled.
    """
    lab = cfg.labels
    horizon = dt.timedelta(hours=lab.horizon_hours)
    seen = events.filter(pl.col(S.EVENT_TIME) < cutoff)
    times = _snapshot_times(seen, cfg, cutoff=cutoff, horizon=horizon)
    # Each T's split is decided before any row is sampled, by the same quantile plan
    # as view rows (the times of the labelable views): stray early events add empty
    # snapshot days but move no boundary.
    at = pl.DataFrame({S.EVENT_TIME: times}, schema={S.EVENT_TIME: S.TIME})
    activity = seen.filter(
        (pl.col(S.EVENT_TYPE) == "view") & (pl.col(S.EVENT_TIME) + horizon < cutoff)
    )[S.EVENT_TIME]
    plan = plan_splits(activity if activity.len() else at[S.EVENT_TIME], cfg.split)
    split_of = dict(
        assign_splits(at, cfg.split, plan=plan).select(S.EVENT_TIME, S.SPLIT).iter_rows()
    )
    targets = seen.filter(pl.col(S.EVENT_TYPE) == lab.target_event).select(
        S.USER_ID, S.ITEM_ID, S.EVENT_TIME
    )
    # One co-view index of the log before the cutoff, sliced per snapshot time.
    coview = CoviewIndex(seen.filter(pl.col(S.EVENT_TYPE) == "view"))
    parts: list[pl.DataFrame] = []
    generated = dict.fromkeys(S.SPLITS, 0)
    kept = dict.fromkeys(S.SPLITS, 0)
    for t in times:
        split = split_of[t]
        rows = _labelled_at(
            seen, items, targets, cfg, at=t, split=split, horizon=horizon, coview=coview
        )
        generated[split] += rows.height
        if split == "train" and lab.train_negative_rate < 1:
            keep = _keep_fraction(
                rows.select(S.USER_ID, S.ITEM_ID, S.EVENT_TIME),
                seed=cfg.seed,
                share=lab.train_negative_rate,
            )
            rows = rows.filter((pl.col(S.LABEL) == 1) | keep)
        kept[split] += rows.height
        parts.append(rows)
    out = pl.concat(parts).select(
        S.USER_ID,
        S.ITEM_ID,
        S.EVENT_TIME,
        S.LABEL,
        S.SPLIT,
        pl.exclude(S.USER_ID, S.ITEM_ID, S.EVENT_TIME, S.LABEL, S.SPLIT),
    )
    if out.is_empty():
        msg = "candidate generation gave no rows at any snapshot time"
        raise StageError(msg)
    return CandidateRows(
        rows=out.sort(S.EVENT_TIME, S.USER_ID, S.ITEM_ID),
        snapshots=len(times),
        generated=generated,
        kept=kept,
        train_negative_rate=lab.train_negative_rate,
        plan=plan,
    )
