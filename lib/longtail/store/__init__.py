"""Feast integration: the Polars offline store, the feature definitions, the store builder.

Names are imported lazily so that ``longtail.store.pit`` (pure Polars) does not
pay for importing Feast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from longtail.store.builder import (
        apply_definitions,
        feature_store,
        feature_store_on_object_store,
        materialize,
        store_yaml,
        write_store_yaml,
    )
    from longtail.store.definitions import Definitions, build_definitions
    from longtail.store.pit import point_in_time_join

__all__ = [
    "Definitions",
    "apply_definitions",
    "build_definitions",
    "feature_store",
    "feature_store_on_object_store",
    "materialize",
    "point_in_time_join",
    "store_yaml",
    "write_store_yaml",
]

_WHERE = {
    "Definitions": "definitions",
    "build_definitions": "definitions",
    "apply_definitions": "builder",
    "feature_store": "builder",
    "feature_store_on_object_store": "builder",
    "materialize": "builder",
    "store_yaml": "builder",
    "write_store_yaml": "builder",
    "point_in_time_join": "pit",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        msg = f"module 'longtail.store' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(f"longtail.store.{_WHERE[name]}"), name)
