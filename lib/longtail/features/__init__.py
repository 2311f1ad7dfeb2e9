"""Point-in-time user and item feature snapshots (the Feast sources)."""

from __future__ import annotations

from longtail.features.snapshots import (
    FeatureTables,
    build_features,
    build_item_features,
    build_user_features,
    item_feature_schema,
    user_feature_schema,
)
from longtail.features.write import feature_paths, write_features

__all__ = [
    "FeatureTables",
    "build_features",
    "build_item_features",
    "build_user_features",
    "feature_paths",
    "item_feature_schema",
    "user_feature_schema",
    "write_features",
]
