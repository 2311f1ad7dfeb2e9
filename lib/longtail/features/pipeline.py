"""The features stage end to end: snapshots, ``feast apply``, materialize, training set."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from longtail.config import Config
from longtail.features.write import write_features
from longtail.ingest.pipeline import last_event_date
from longtail.paths import Layout
from longtail.store import apply_definitions, feature_store, materialize
from longtail.training_set import TrainingSetSummary, build_training_set

__all__ = ["FeaturesRun", "default_until", "run_features"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeaturesRun:
    """Counts of one run of the features stage."""

    until: dt.date
    user_rows: int
    item_rows: int
    training: TrainingSetSummary


def default_until(cfg: Config) -> dt.date:
    """The day after the last canonical event, so every event is used.

    Raises
    ------
    StageError
        There are no canonical events.
    """
    return last_event_date(Layout(cfg.data_dir)) + dt.timedelta(days=1)


def run_features(cfg: Config, *, until: dt.date) -> FeaturesRun:
    """Build snapshots up to ``until``, apply the Feast repo, materialize, build the training set.

    Reruns with the same inputs and ``until`` write the same files.
    """
    t0 = time.perf_counter()
    tables = write_features(cfg, until=until)
    t1 = time.perf_counter()
    store = feature_store(cfg)
    apply_definitions(store, cfg)
    end = dt.datetime(until.year, until.month, until.day, tzinfo=dt.UTC)
    materialize(store, end=end)
    t2 = time.perf_counter()
    training = build_training_set(cfg, store, until=until)
    # The parts' times, for whoever sizes the step (benchmarks/daily_scale.py reads the log).
    log.info(
        "features: snapshots %.1fs, feast apply + materialize %.1fs, training set %.1fs",
        t1 - t0,
        t2 - t1,
        time.perf_counter() - t2,
    )
    return FeaturesRun(
        until=until, user_rows=tables.user.height, item_rows=tables.item.height, training=training
    )
