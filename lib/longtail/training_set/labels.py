"""Labels from events: a view is positive if its user then does the target event on the item."""

from __future__ import annotations

import datetime as dt

import polars as pl

from longtail import schema as S
from longtail.errors import StageError

__all__ = ["label_views"]


def label_views(
    events: pl.DataFrame,
    *,
    target_event: str,
    horizon: dt.timedelta,
    cutoff: dt.datetime,
) -> pl.DataFrame:
    """Label every view whose horizon ends before ``cutoff``.

    A view of item i by user u at t is positive when u has a ``target_event`` on i
    at p with ``t < p <= t + horizon``. Only events before ``cutoff`` exist, so
    views with ``t + horizon >= cutoff`` cannot be labelled and are left out
    (a negative there would be a guess).

    Parameters
    ----------
    events
        Canonical events.
    target_event
        ``"purchase"`` or ``"cart"``.
    horizon
        How long after the view the target event counts.
    cutoff
        The first instant not observed (events at or after it are ignored).

    Returns
    -------
    pl.DataFrame
        ``user_id, item_id, event_time, label`` (Int8) and ``label_time`` (the
        target event that made the row positive, null for a negative), one row per
        distinct view, sorted by time, user, item.

    Raises
    ------
    StageError
        ``target_event`` is not an event type, or the horizon is not positive.
    """
    if target_event not in S.EVENT_TYPES or target_event == "view":
        msg = f"target_event must be 'purchase' or 'cart'. Got {target_event!r} instead."
        raise StageError(msg)
    if horizon <= dt.timedelta(0):
        msg = f"horizon must be positive. Got {horizon!r} instead."
        raise StageError(msg)
    keys = [S.USER_ID, S.ITEM_ID]
    seen = events.filter(pl.col(S.EVENT_TIME) < cutoff)
    views = (
        seen.filter((pl.col(S.EVENT_TYPE) == "view") & (pl.col(S.EVENT_TIME) + horizon < cutoff))
        .select(*keys, S.EVENT_TIME)
        .unique()
        .sort(S.EVENT_TIME)
    )
    targets = (
        seen.filter(pl.col(S.EVENT_TYPE) == target_event)
        .select(*keys, pl.col(S.EVENT_TIME).alias("__target"))
        .unique()
        .sort("__target")
    )
    # The first target event strictly after the view, per (user, item).
    nxt = views.join_asof(
        targets,
        left_on=S.EVENT_TIME,
        right_on="__target",
        by=keys,
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    label = (pl.col("__target") - pl.col(S.EVENT_TIME) <= horizon).fill_null(False)
    return nxt.select(
        *keys,
        S.EVENT_TIME,
        label.cast(pl.Int8).alias(S.LABEL),
        pl.when(label).then(pl.col("__target")).alias(S.LABEL_TIME),
    ).sort(S.EVENT_TIME, *keys)
