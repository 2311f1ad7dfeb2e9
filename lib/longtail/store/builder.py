"""Build a Feast ``FeatureStore`` for any data directory, independent of the working directory.

The store's ``feature_store.yaml`` is generated into ``DATA_DIR/feast/`` from the
config (absolute paths), next to the file registry and the SQLite online store.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from feast import FeatureStore

from longtail.config import Config
from longtail.paths import Layout
from longtail.store.definitions import RECS_VIEW, Definitions, build_definitions
from longtail.store.offline import STORE_TYPE

if TYPE_CHECKING:
    from longtail.storage import DataStore

__all__ = [
    "apply_definitions",
    "feature_store",
    "feature_store_on_object_store",
    "materialize",
    "store_yaml",
    "write_store_yaml",
]

log = logging.getLogger(__name__)


def store_yaml(cfg: Config) -> dict[str, Any]:
    """Return the ``feature_store.yaml`` content for ``cfg`` (absolute paths)."""
    layout = Layout(cfg.data_dir.resolve())
    fs = cfg.feature_store
    online: dict[str, Any]
    if fs.online_store == "redis":
        online = {"type": "redis", "connection_string": fs.redis_connection_string}
    else:
        online = {"type": "sqlite", "path": str(layout.feast / "online.db")}
    return {
        "project": fs.project,
        "provider": "local",
        "registry": {"registry_type": "file", "path": str(layout.feast / "registry.db")},
        "offline_store": {"type": STORE_TYPE, "data_dir": str(layout.root)},
        "online_store": online,
        "entity_key_serialization_version": 3,
    }


def write_store_yaml(cfg: Config) -> Path:
    """Write ``DATA_DIR/feast/feature_store.yaml`` and return the folder (the Feast repo path)."""
    folder = Layout(cfg.data_dir.resolve()).feast
    folder.mkdir(parents=True, exist_ok=True)
    text = "# Generated from the longtail config; edit the config, not this file.\n"
    text += yaml.safe_dump(store_yaml(cfg), sort_keys=False)
    path = folder / "feature_store.yaml"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return folder


def feature_store(cfg: Config) -> FeatureStore:
    """Return a ``FeatureStore`` on ``cfg``'s data directory (the yaml is written first)."""
    return FeatureStore(repo_path=str(write_store_yaml(cfg)))


def feature_store_on_object_store(
    cfg: Config, store: DataStore, *, registry: bytes, folder: Path
) -> FeatureStore:
    """A read-only ``FeatureStore`` whose offline sources are the snapshots in ``store``.

    For a Ray worker with no copy of the data directory (a scoring actor): the
    registry is the driver's, written into ``folder`` (a local scratch folder), so
    the feature service and its views are exactly the driver's; the offline store
    reads ``store``'s ``features/`` through its pyarrow filesystem; the online store
    is an empty SQLite file in ``folder`` that nothing here reads or writes.
    """
    from longtail.store.offline import use_object_store

    use_object_store(store.uri, store.filesystem)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registry.db").write_bytes(registry)
    content = {
        **store_yaml(cfg),
        "registry": {"registry_type": "file", "path": str(folder / "registry.db")},
        "offline_store": {"type": STORE_TYPE, "data_dir": store.uri},
        "online_store": {"type": "sqlite", "path": str(folder / "online.db")},
    }
    (folder / "feature_store.yaml").write_text(yaml.safe_dump(content, sort_keys=False))
    return FeatureStore(repo_path=str(folder))


def apply_definitions(store: FeatureStore, cfg: Config) -> Definitions:
    """Register the project's entities, views and feature service (``feast apply`` from code)."""
    defs = build_definitions(cfg.features, service=cfg.feature_store.feature_service)
    store.apply(defs.objects())
    return defs


def materialize(store: FeatureStore, *, end: dt.datetime) -> None:
    """Load the latest snapshot of every key up to ``end`` into the online store.

    Incremental: each view starts where the last run stopped. A view never
    materialized starts at ``end - ttl`` (Feast's own default, ``now - ttl``, loads
    nothing for historical data).
    """
    if end.tzinfo is None:
        end = end.replace(tzinfo=dt.UTC)
    # The recommendation lists are pushed by scoring, never materialized from files.
    views = [v for v in store.list_feature_views() if v.name != RECS_VIEW]
    fresh = [v for v in views if v.online and v.most_recent_end_time is None]
    for view in fresh:
        start = end - (view.ttl or dt.timedelta(0))
        store.materialize(start_date=start, end_date=end, feature_views=[view.name])
    if len(fresh) < len(views):
        store.materialize_incremental(
            end_date=end, feature_views=[v.name for v in views if v not in fresh]
        )
