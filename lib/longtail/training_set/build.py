"""Labelled, point-in-time training sets through the Feast feature service."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from longtail import schema as S
from longtail.config import Config
from longtail.errors import StageError
from longtail.io import atomic_dir, write_json
from longtail.paths import Layout, split_file
from longtail.store.pit import as_polars
from longtail.training_set.candidate_rows import candidate_rows
from longtail.training_set.embargo import EmbargoStats, apply_embargo
from longtail.training_set.labels import label_views
from longtail.training_set.split import SplitPlan, assign_splits, plan_splits

if TYPE_CHECKING:
    from feast import FeatureStore

__all__ = ["SplitStats", "TrainingSetSummary", "build_training_set", "features_for"]

log = logging.getLogger(__name__)


def features_for(store: FeatureStore, entity_rows: Any, *, service: str) -> pl.DataFrame:
    """Point-in-time features of the feature service for arbitrary entity rows.

    Training and scoring both call this; only the timestamps differ.

    Parameters
    ----------
    store
        The feature store (see :func:`longtail.store.feature_store`).
    entity_rows
        A pandas, Polars or Arrow frame with ``user_id``, ``item_id`` and
        ``event_time`` (the time the features must be known at; naive = UTC).
    service
        The feature service, e.g. ``"ranking_v1"``.

    Returns
    -------
    pl.DataFrame
        One row per entity row, in order: the three keys (``event_time`` as
        UTC microseconds) then the ``user_*``/``item_*`` features. Features come
        from the latest snapshot at or before ``event_time`` within the TTL, so
        they only see events strictly before it; without one they are null,
        except ``item_popularity_bucket``, which is then ``"tail"``.

    Raises
    ------
    StageError
        A key column is missing or the store returned rows out of order.
    """
    frame = as_polars(entity_rows)
    missing = [c for c in S.TRAINING_KEYS if c not in frame.columns]
    if missing:
        msg = f"entity rows lack column(s) {missing}; have {frame.columns}"
        raise StageError(msg)
    keys = frame.select(
        pl.col(S.USER_ID).cast(pl.Int64),
        pl.col(S.ITEM_ID).cast(pl.Int64),
        _utc(frame.schema[S.EVENT_TIME]).alias(S.EVENT_TIME),
    )
    job = store.get_historical_features(entity_df=keys, features=store.get_feature_service(service))
    out = pl.from_arrow(job.to_arrow())
    if not isinstance(out, pl.DataFrame) or out.height != keys.height:
        msg = f"feature store returned {getattr(out, 'height', '?')} rows for {keys.height}"
        raise StageError(msg)
    if not out.select(S.USER_ID, S.ITEM_ID).equals(keys.select(S.USER_ID, S.ITEM_ID)):
        msg = "feature store returned rows in another order than the entity rows"
        raise StageError(msg)
    feats = [c for c in out.columns if c not in S.TRAINING_KEYS]
    out = keys.hstack(out.select(feats))
    if S.POPULARITY_BUCKET in out.columns:
        out = out.with_columns(pl.col(S.POPULARITY_BUCKET).fill_null("tail"))
    return out


def _utc(dtype: pl.DataType) -> pl.Expr:
    from longtail.store.pit import utc_timestamp

    return utc_timestamp(S.EVENT_TIME, dtype)


@dataclass(frozen=True)
class SplitStats:
    """Rows, positives and label rate of one split."""

    rows: int
    positives: int
    label_rate: float
    start: dt.datetime | None
    end: dt.datetime | None


@dataclass(frozen=True)
class TrainingSetSummary:
    """What :func:`build_training_set` wrote."""

    until: dt.date
    views_seen: int
    splits: dict[str, SplitStats]
    paths: dict[str, str]
    plan: SplitPlan | None = None
    embargo: tuple[EmbargoStats, ...] = ()
    population: str = "views"

    def lines(self) -> list[str]:
        """One printable line per split, and one when rows lie far outside the bulk."""
        out = [
            f"{name:<10} rows={s.rows:>9,} positives={s.positives:>7,} "
            f"label_rate={s.label_rate:.4f}"
            for name, s in self.splits.items()
        ] + [e.line() for e in self.embargo]
        empty = [name for name, s in self.splits.items() if s.rows and not s.positives]
        if empty and self.population == "candidates":
            # The gate stops such a set; say what to change, which the gate cannot.
            out.append(
                f"split(s) {empty} hold no positive candidate row: the sampled users bought "
                "nothing in their windows; sparse data needs more users_per_snapshot / "
                'eval_users_per_snapshot or [labels] population = "views"'
            )
        if self.plan is not None and self.plan.rows_far_outside:
            p = self.plan
            out.append(
                f"{p.rows_far_outside:,} row(s) lie far outside the bulk of the data "
                f"({p.bulk_start:%Y-%m-%d} to {p.bulk_end:%Y-%m-%d}): {p.rows_far_before:,} "
                f"before, {p.rows_far_after:,} after; [ingest] window_start/window_end "
                "can leave them out"
            )
        return out


def _labelled_rows(
    events: pl.DataFrame, items: pl.DataFrame, cfg: Config, *, cutoff: dt.datetime
) -> tuple[pl.DataFrame, SplitPlan, dict[str, Any]]:
    """The configured population's labelled rows with their split, the plan, the counts."""
    population: dict[str, Any] = {"population": cfg.labels.population}
    if cfg.labels.population == "candidates":
        built = candidate_rows(events, items, cfg, cutoff=cutoff)
        labelled, plan = built.rows, built.plan
        population.update(
            snapshots=built.snapshots,
            generated=built.generated,
            kept=built.kept,
            train_negative_rate=built.train_negative_rate,
        )
    else:
        labelled = label_views(
            events,
            target_event=cfg.labels.target_event,
            horizon=dt.timedelta(hours=cfg.labels.horizon_hours),
            cutoff=cutoff,
        )
        if labelled.is_empty():
            labelled = assign_splits(labelled, cfg.split)  # raises the clear "no labelled rows"
        plan = plan_splits(labelled[S.EVENT_TIME], cfg.split)
        labelled = assign_splits(labelled, cfg.split, plan=plan)
    return labelled, plan, population


def build_training_set(cfg: Config, store: FeatureStore, *, until: dt.date) -> TrainingSetSummary:
    """Label views, fetch their features through the feature service, split by time, write.

    Long because its parameters and outputs are documented; labelling, the embargo and the feature
    fetch are their own functions.

    Parameters
    ----------
    cfg
        Labels, split and feature-store settings, and the data directory.
    store
        A store whose views are applied and whose sources are built up to ``until``.
    until
        Events at or after ``until`` 00:00 UTC are not used.

    Returns
    -------
    TrainingSetSummary
        Row counts and label rates per split, also written to
        ``reports/training_set_summary.json``. The splits are written to
        ``training/{train,validation,test}.parquet``, swapped in together,
        after the embargo (:func:`longtail.training_set.embargo.apply_embargo`),
        whose counts are in the summary's ``embargo``.

    Raises
    ------
    StageError
        The data is too short for three splits plus the embargo.
    """
    from longtail.ingest import load_tables

    layout = Layout(cfg.data_dir)
    canonical = load_tables(layout)
    events, items = canonical.events, canonical.items
    cutoff = dt.datetime(until.year, until.month, until.day, tzinfo=dt.UTC)
    labelled, plan, population = _labelled_rows(events, items, cfg, cutoff=cutoff)
    views_seen = labelled.height
    # No label window may cross a split boundary (see training_set/embargo.py).
    labelled, embargo = apply_embargo(
        labelled, horizon=dt.timedelta(hours=cfg.labels.horizon_hours), cfg=cfg.split, plan=plan
    )
    feats = features_for(store, labelled, service=cfg.feature_store.feature_service)
    rows = feats.select(*S.TRAINING_KEYS).hstack(labelled.select(S.LABEL, S.SPLIT))
    rows = rows.hstack(feats.drop(*S.TRAINING_KEYS))
    # Candidate rows carry their source and pair features (computed with the candidates).
    extra = [c for c in labelled.columns if c not in (*S.TRAINING_KEYS, S.LABEL, S.SPLIT)]
    if extra:
        rows = rows.hstack(labelled.select(extra))
    stats: dict[str, SplitStats] = {}
    paths: dict[str, str] = {}
    with atomic_dir(layout.training) as tmp:
        for name in S.SPLITS:
            part = rows.filter(pl.col(S.SPLIT) == name)
            pos = int(part[S.LABEL].sum())
            start, end = part[S.EVENT_TIME].min(), part[S.EVENT_TIME].max()
            stats[name] = SplitStats(
                rows=part.height,
                positives=pos,
                label_rate=pos / part.height if part.height else 0.0,
                start=start if isinstance(start, dt.datetime) else None,
                end=end if isinstance(end, dt.datetime) else None,
            )
            part.write_parquet(tmp / split_file(name), statistics=True)
            paths[name] = str(layout.split(name))
    summary = TrainingSetSummary(
        until=until,
        views_seen=views_seen,
        splits=stats,
        paths=paths,
        plan=plan,
        embargo=tuple(embargo),
        population=cfg.labels.population,
    )
    write_json(
        {
            "until": until.isoformat(),
            "labels": cfg.labels.model_dump(),
            "population": population,
            "splits": {k: vars(v) for k, v in stats.items()},
            **plan.to_dict(),
            "views_labelled": views_seen,
            "embargo": [e.to_json() for e in embargo],
        },
        layout.training_set_summary,
    )
    for line in summary.lines():
        log.info("training set %s", line)
    return summary
