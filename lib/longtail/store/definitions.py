"""The Feast objects of the project, built from the features config.

``feature_repo/repo.py`` exposes these to the ``feast`` CLI, and
:func:`longtail.store.apply_definitions` registers the same objects from code,
so the CLI and the jobs always agree. Field types come from the snapshot
schemas in :mod:`longtail.schema`, so a feature cannot be added to
the tables without appearing in the views.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Bool, Float64, Int64, String

from longtail import schema as S
from longtail.config import FeaturesConfig
from longtail.errors import StageError
from longtail.paths import Layout

__all__ = [
    "ITEM_SOURCE_PATH",
    "ITEM_VIEW",
    "RECS_SCHEMA",
    "RECS_SOURCE",
    "RECS_SOURCE_PATH",
    "RECS_VIEW",
    "USER_SOURCE_PATH",
    "USER_VIEW",
    "Definitions",
    "build_definitions",
    "feast_type",
]

USER_VIEW = "user_features"
ITEM_VIEW = "item_features"
# Relative to the offline store's data_dir (DATA_DIR), so the registry is portable.
_RELATIVE = Layout(Path())
USER_SOURCE_PATH = _RELATIVE.feature_table(USER_VIEW).as_posix()
ITEM_SOURCE_PATH = _RELATIVE.feature_table(ITEM_VIEW).as_posix()
RECS_SOURCE_PATH = _RELATIVE.serving_source.as_posix()
RECS_SOURCE = "recommendation_lists"
RECS_VIEW = "user_recommendations"
# The lists' columns (besides user_id and the snapshot time), as scoring writes them.
RECS_SCHEMA: dict[str, pl.DataType] = {
    "rec_items": pl.List(pl.Int64),
    "rec_probabilities": pl.List(pl.Float64),
    "rec_scores": pl.List(pl.Float64),
    "rec_model_version": pl.String(),
    "rec_date": pl.String(),
}


def feast_type(dtype: pl.DataType) -> Any:
    """Return the Feast type of a Polars dtype used in the snapshot tables.

    Raises
    ------
    StageError
        The dtype has no Feast counterpart here.
    """
    if dtype == pl.Int64:
        return Int64
    if dtype == pl.Float64:
        return Float64
    if dtype == pl.Boolean:
        return Bool
    if dtype == pl.String:
        return String
    if dtype == pl.List(pl.Int64):
        return Array(Int64)
    if dtype == pl.List(pl.Float64):
        return Array(Float64)
    msg = f"no Feast type for Polars dtype {dtype}"
    raise StageError(msg)


def _fields(schema: dict[str, pl.DataType]) -> list[Field]:
    return [
        Field(name=name, dtype=feast_type(dtype))
        for name, dtype in schema.items()
        if name != S.SNAPSHOT_TIME
    ]


@dataclass(frozen=True)
class Definitions:
    """Entities, sources, feature views and the feature service, in reading order."""

    user: Entity
    item: Entity
    user_source: FileSource
    item_source: FileSource
    user_features: FeatureView
    item_features: FeatureView
    service: FeatureService
    recs_source: FileSource
    recommendations: FeatureView

    def objects(self) -> list[Any]:
        """Every object, for ``FeatureStore.apply``."""
        return [
            self.user,
            self.item,
            self.user_source,
            self.item_source,
            self.user_features,
            self.item_features,
            self.service,
            self.recs_source,
            self.recommendations,
        ]


def build_definitions(cfg: FeaturesConfig, *, service: str = "ranking_v1") -> Definitions:
    """Build the project's Feast objects.

    Long because it declares every Feast object of the project in one place, top-down (entities,
    sources, feature views, feature services), as ``feature_repo/`` reads.

    Parameters
    ----------
    cfg
        Windows and TTL of the snapshots.
    service
        Name of the versioned feature service training and scoring share.

    Returns
    -------
    Definitions
        The objects; feature names equal the training-row column names.
    """
    ttl = dt.timedelta(days=cfg.ttl_days)
    # A shopper, keyed by the canonical user id.
    user = Entity(
        name="user",
        join_keys=[S.USER_ID],
        value_type=ValueType.INT64,
        description="A shopper",
    )
    # A catalogue item, keyed by the canonical item id.
    item = Entity(
        name="item",
        join_keys=[S.ITEM_ID],
        value_type=ValueType.INT64,
        description="A catalogue item",
    )
    # Daily user snapshots: activity and conversion before each day.
    user_source = FileSource(
        name="user_snapshots", path=USER_SOURCE_PATH, timestamp_field=S.SNAPSHOT_TIME
    )
    # Daily item snapshots: popularity, conversion, price and availability before each day.
    item_source = FileSource(
        name="item_snapshots", path=ITEM_SOURCE_PATH, timestamp_field=S.SNAPSHOT_TIME
    )
    # What the shop knows about a user's intent at a point in time.
    user_features = FeatureView(
        name=USER_VIEW,
        entities=[user],
        ttl=ttl,
        schema=_fields(S.user_feature_schema(cfg)),
        source=user_source,
        online=True,
        description="User activity windows, smoothed conversion, recency, category focus",
    )
    # What the shop knows about an item's appeal at a point in time.
    item_features = FeatureView(
        name=ITEM_VIEW,
        entities=[item],
        ttl=ttl,
        schema=_fields(S.item_feature_schema(cfg)),
        source=item_source,
        online=True,
        description="Item popularity windows, bucket and rank, conversion, price, age",
    )
    # The model's inputs: training and batch scoring both ask for this service.
    ranking = FeatureService(
        name=service,
        features=[user_features, item_features],
        description="Inputs of the CTR/conversion ranking model",
    )
    # The latest top-K lists per user, written by batch scoring (serving, not a model input).
    recs_source = FileSource(
        name=RECS_SOURCE, path=RECS_SOURCE_PATH, timestamp_field=S.SNAPSHOT_TIME
    )
    # What a service shows a user: item ids, calibrated probabilities, the model behind them.
    recommendations = FeatureView(
        name=RECS_VIEW,
        entities=[user],
        ttl=dt.timedelta(days=7),
        schema=[Field(name=name, dtype=feast_type(dtype)) for name, dtype in RECS_SCHEMA.items()],
        source=recs_source,
        online=True,
        description="Calibrated top-K recommendations per user, from the daily batch",
    )
    return Definitions(
        user, item, user_source, item_source, user_features, item_features, ranking,
        recs_source, recommendations,
    )  # fmt: skip
