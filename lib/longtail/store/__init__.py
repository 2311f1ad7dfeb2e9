"""Feast integration: the Polars offline store, the feature definitions, the store builder."""

from __future__ import annotations

from longtail.store.definitions import Definitions, build_definitions
from longtail.store.feature_store import (
    apply_definitions,
    feature_store,
    materialize,
    store_yaml,
    write_store_yaml,
)
from longtail.store.pit import point_in_time_join

__all__ = [
    "Definitions",
    "apply_definitions",
    "build_definitions",
    "feature_store",
    "materialize",
    "point_in_time_join",
    "store_yaml",
    "write_store_yaml",
]
