"""A Feast offline store backed by Polars: correct point-in-time joins, fast.

Registered in ``feature_store.yaml`` by its import path::

    offline_store:
      type: longtail.store.offline.PolarsOfflineStore
      data_dir: ../data/demo      # relative FileSource paths resolve against this

It reads Parquet ``FileSource`` files. ``get_historical_features`` keeps every
entity row exactly once, in order, with nulls where no feature row lies inside
the TTL (Feast's file store drops such rows); the pulls serve materialization.

``data_dir`` may be an object store's URI (``s3://bucket/prefix``) once the process
has handed the store's pyarrow filesystem to :func:`use_object_store`: sources under
it are then read through that filesystem (a scoring actor on a node with no copy of
the data directory).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores.file_source import FileSource, SavedDatasetFileStorage
from feast.infra.offline_stores.offline_store import (
    OfflineStore,
    RetrievalJob,
    RetrievalMetadata,
)
from feast.infra.offline_stores.offline_utils import DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import FeastConfigBaseModel, RepoConfig
from feast.saved_dataset import SavedDatasetStorage
from feast.utils import _get_requested_feature_views_to_features_dict

from longtail.errors import StageError
from longtail.store.definitions import RECS_SCHEMA, RECS_SOURCE
from longtail.store.pit import as_polars, point_in_time_join, utc_timestamp

__all__ = [
    "PolarsOfflineStore",
    "PolarsOfflineStoreConfig",
    "PolarsRetrievalJob",
    "forget_source_slices",
    "keep_source_slices",
    "use_object_store",
]

log = logging.getLogger(__name__)

STORE_TYPE: Literal["longtail.store.offline.PolarsOfflineStore"] = (
    "longtail.store.offline.PolarsOfflineStore"
)


class PolarsOfflineStoreConfig(FeastConfigBaseModel):
    """Settings of the Polars offline store in ``feature_store.yaml``."""

    type: Literal["longtail.store.offline.PolarsOfflineStore"] = STORE_TYPE
    """Offline store type selector (the import path)."""

    data_dir: str = "."
    """Relative ``FileSource`` paths resolve against this folder (itself relative
    to the repo path); ``${VAR}`` is expanded by Feast when the YAML is read."""


def _arrow(frame: pl.DataFrame) -> pa.Table:
    # Oldest compat level: plain (large) strings and lists that Feast's type maps know.
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


class PolarsRetrievalJob(RetrievalJob):
    """A lazy retrieval: nothing is read until ``to_arrow``/``to_df``/``to_polars``."""

    def __init__(
        self,
        compute: Callable[[], pl.DataFrame],
        *,
        full_feature_names: bool,
        on_demand_feature_views: list[OnDemandFeatureView] | None = None,
        metadata: RetrievalMetadata | None = None,
    ) -> None:
        self._compute = compute
        self._full_feature_names = full_feature_names
        self._odfvs = on_demand_feature_views or []
        self._metadata = metadata

    @property
    def full_feature_names(self) -> bool:
        """Whether feature columns are named ``view__feature``."""
        return self._full_feature_names

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        """On-demand views Feast applies on top of the result."""
        return self._odfvs

    @property
    def metadata(self) -> RetrievalMetadata | None:
        """Features, keys and the entity timestamp range of the request."""
        return self._metadata

    def to_polars(self) -> pl.DataFrame:
        """Run the retrieval and return a Polars frame (no on-demand transforms)."""
        return self._compute()

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        return _arrow(self._compute())

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    def persist(
        self,
        storage: SavedDatasetStorage,
        allow_overwrite: bool = False,
        timeout: int | None = None,
    ) -> None:
        """Write the result to a Parquet ``SavedDatasetFileStorage``."""
        if not isinstance(storage, SavedDatasetFileStorage):
            msg = f"can only persist to SavedDatasetFileStorage. Got {type(storage).__name__!r}."
            raise StageError(msg)
        path = Path(storage.file_options.uri)
        if path.exists() and not allow_overwrite:
            msg = f"saved dataset location exists: {path}"
            raise StageError(msg)
        from longtail.io import write_parquet

        write_parquet(self._compute(), path)


# --------------------------------------------------------------------------- sources


def _data_dir(config: RepoConfig) -> Path:
    store_cfg = config.offline_store
    raw = getattr(store_cfg, "data_dir", ".")
    base = Path(os.path.expandvars(raw))
    if not base.is_absolute() and config.repo_path is not None:
        base = Path(config.repo_path) / base
    return base


def source_path(config: RepoConfig, source: DataSource) -> str:
    """Return the resolved path or URI of a ``FileSource``.

    Raises
    ------
    StageError
        ``source`` is not a ``FileSource``.
    """
    if not isinstance(source, FileSource):
        msg = f"the Polars offline store reads FileSources only. Got {type(source).__name__!r}."
        raise StageError(msg)
    uri = source.path
    if "://" in uri or Path(uri).is_absolute():
        return uri
    base = os.path.expandvars(getattr(config.offline_store, "data_dir", "."))
    if "://" in base:  # an object store's prefix: keys join with "/", never as a Path
        return f"{base.rstrip('/')}/{uri}"
    return str(_data_dir(config) / uri)


#: Object stores this process reads sources from: ``s3://bucket/prefix`` -> filesystem.
_FILESYSTEMS: dict[str, pafs.FileSystem] = {}


def use_object_store(uri: str, filesystem: pafs.FileSystem) -> None:
    """Read the sources under ``uri`` (``s3://bucket/prefix``) through ``filesystem``.

    The filesystem carries the credentials of the process that made it (a
    :class:`longtail.storage.DataStore`'s, pickled to a Ray worker), so the worker
    needs none of its own, and Feast's YAML never holds a key.
    """
    _FILESYSTEMS[uri.rstrip("/")] = filesystem


def _remote(path: str) -> tuple[pafs.FileSystem, str] | None:
    """The filesystem and key of a source under a :func:`use_object_store` URI, else None.

    Raises
    ------
    StageError
        ``path`` is a URI under no store this process was given.
    """
    if "://" not in path:
        return None
    for uri, fs in _FILESYSTEMS.items():
        if path.startswith(uri + "/"):
            return fs, path.partition("://")[2]
    msg = f"feature source {path}: no filesystem for it in this process (use_object_store)"
    raise StageError(msg)


def _missing(source: DataSource, path: str) -> StageError:
    hint = "push them with jobs/sync.py --push features" if "://" in path else "build them first"
    return StageError(f"feature source {source.name!r} not found at {path}; {hint}")


def _scan(config: RepoConfig, source: DataSource) -> pl.LazyFrame:
    path = source_path(config, source)
    remote = _remote(path)
    if remote is None:
        if not Path(path).exists():
            raise _missing(source, path)
        return pl.scan_parquet(path)
    fs, key = remote
    if fs.get_file_info(key).type == pafs.FileType.NotFound:
        raise _missing(source, path)
    # Polars hands the projection and the time filter to pyarrow (row-group statistics).
    return pl.scan_pyarrow_dataset(pads.dataset(key, filesystem=fs, format="parquet"))


def _batch_source(view: FeatureView) -> DataSource:
    if view.batch_source is None:
        msg = f"feature view {view.name!r} has no batch source"
        raise StageError(msg)
    return view.batch_source


def _reverse_map(source: DataSource) -> dict[str, str]:
    return {v: k for k, v in (source.field_mapping or {}).items()}


def _time_bounds(
    frame: pl.LazyFrame, column: str, start: dt.datetime | None, end: dt.datetime | None
) -> pl.LazyFrame:
    dtype = frame.collect_schema()[column]
    ts = utc_timestamp(column, dtype)
    if start is not None:
        frame = frame.filter(ts >= _utc(start))
    if end is not None:
        frame = frame.filter(ts <= _utc(end))
    return frame


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# ------------------------------------------------------------------ kept time slices


@dataclass(frozen=True)
class _Slice:
    """A source's rows inside one time window and column set, and the source's row count."""

    key: tuple[Any, ...]
    frame: pl.DataFrame
    source_rows: int


#: Per source path, the last slice read, while :func:`keep_source_slices` is on.
_SLICES: dict[str, _Slice] | None = None


def keep_source_slices() -> None:
    """Keep, per feature source, the last time slice read in this process.

    For a process that asks for the features of many small entity frames at one
    timestamp (a scoring actor: about 130 blocks of 256k pairs at 10M events), each
    request otherwise re-reads and filters the Parquet source for the same window,
    which was 90% of the scoring time. A kept slice is read again when the window,
    the columns or the source's files (path, size, modification time, inode) change, so
    the features are those of a fresh read. One slice per source: memory is bounded
    by the TTL window, not by the requests.
    """
    global _SLICES  # a per-process switch, like a logging level
    if _SLICES is None:
        _SLICES = {}


def forget_source_slices() -> None:
    """Drop the kept slices and stop keeping them (:func:`keep_source_slices`)."""
    global _SLICES
    _SLICES = None


def _files_signature(path: str) -> tuple[Any, ...]:
    """What identifies a source's content: its files' names, sizes, modification times."""
    remote = _remote(path)
    if remote is not None:
        fs, key = remote
        info = fs.get_file_info(key)
        if info.type == pafs.FileType.Directory:
            selector = pafs.FileSelector(key, recursive=True)
            infos = sorted(fs.get_file_info(selector), key=lambda i: i.path)
        else:
            infos = [info]
        return tuple((i.path, i.size, i.mtime_ns) for i in infos)
    root = Path(path)
    files = sorted(root.rglob("*.parquet")) if root.is_dir() else [root]
    out = []
    for f in files:
        st = f.stat()
        out.append((str(f), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def _slice_key(path: str, *parts: Any) -> tuple[Any, ...] | None:
    """The key a kept slice of ``path`` must match; None when slices are not kept here."""
    if _SLICES is None:
        return None
    return (*parts, _files_signature(path))


# --------------------------------------------------------------------------- the store


# Filter the source by the entity keys only when it has this many times more rows.
_KEY_FILTER_RATIO = 8


def _entity_timestamp_column(entity: pl.DataFrame) -> str:
    if DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL in entity.columns:
        return DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL
    found = [n for n, d in entity.schema.items() if isinstance(d, pl.Datetime)]
    if len(found) == 1:
        return found[0]
    msg = (
        f"entity rows need a column {DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL!r} or exactly one "
        f"datetime column. Got {found!r} instead."
    )
    raise StageError(msg)


def _view_join(
    config: RepoConfig,
    entity: pl.DataFrame,
    entity_ts: str,
    view: FeatureView,
    features: list[str],
    *,
    full_feature_names: bool,
) -> pl.DataFrame:
    source = _batch_source(view)
    reverse = _reverse_map(source)
    keys = [
        (view.projection.join_key_map.get(c.name, c.name), reverse.get(c.name, c.name))
        for c in view.entity_columns
    ]
    view_name: str = view.projection.name_to_use()  # type: ignore[no-untyped-call]
    prefix = f"{view_name}__" if full_feature_names else ""
    columns = {reverse.get(f, f): f"{prefix}{f}" for f in features}
    ts_field = source.timestamp_field
    created = source.created_timestamp_column or None
    ttl = view.ttl if view.ttl and view.ttl > dt.timedelta(0) else None

    scan = _scan(config, source)
    wanted = list(dict.fromkeys([*(r for _, r in keys), ts_field, *columns]))
    if created:
        wanted.append(created)
    schema = scan.collect_schema()
    missing = [c for c in wanted if c not in schema]
    if missing:
        msg = f"feature view {view.name!r}: source lacks column(s) {missing}; has {schema.names()}"
        raise StageError(msg)
    lo = entity[entity_ts].min()
    hi = entity[entity_ts].max()
    bounds_start = None
    if ttl is not None and isinstance(lo, dt.datetime):
        bounds_start = _utc(lo) - ttl
    bounds_end = _utc(hi) if isinstance(hi, dt.datetime) else None
    frame = _time_bounds(scan.select(wanted), ts_field, bounds_start, bounds_end)
    path = source_path(config, source)
    key = _slice_key(path, tuple(wanted), bounds_start, bounds_end)
    kept = _SLICES.get(path) if _SLICES is not None and key is not None else None
    if kept is not None and kept.key != key:
        kept = None  # another window, other columns, or the files changed
    if kept is not None:
        frame, source_rows = kept.frame.lazy(), kept.source_rows
    else:
        source_rows = scan.select(pl.len()).collect().item()  # Parquet metadata
    # Read only the keys asked for: a small entity frame then packs and sorts a small
    # slice. A large one asks for much of the source anyway, and the lookup per source
    # row would cost more than it saves.
    small = entity.height * _KEY_FILTER_RATIO < source_rows
    if _SLICES is not None and key is not None and kept is None and small:
        # Many small frames at one time (scoring's blocks): read the time slice once.
        kept = _SLICES[path] = _Slice(key=key, frame=frame.collect(), source_rows=source_rows)
        frame = kept.frame.lazy()
    for left, right in keys if small else []:
        if left in entity.columns and entity.schema[left] != pl.Null:
            wanted_keys = entity[left].drop_nulls().unique().cast(schema[right], strict=False)
            frame = frame.filter(pl.col(right).is_in(wanted_keys.drop_nulls().implode()))
    feats = frame.collect()
    return point_in_time_join(
        entity,
        feats,
        keys=keys,
        entity_timestamp=entity_ts,
        feature_timestamp=ts_field,
        created_timestamp=created,
        columns=columns,
        ttl=ttl,
    )


def historical_features(
    config: RepoConfig,
    views_to_features: dict[FeatureView, list[str]],
    entity: pl.DataFrame,
    *,
    full_feature_names: bool,
) -> pl.DataFrame:
    """Join every requested view onto ``entity``; the core of ``get_historical_features``.

    Raises
    ------
    StageError
        Output names collide, or a source or column is missing.
    """
    entity_ts = _entity_timestamp_column(entity)
    out = entity
    for view, features in views_to_features.items():
        part = _view_join(
            config, entity, entity_ts, view, features, full_feature_names=full_feature_names
        )
        clash = [c for c in part.columns if c in out.columns]
        if clash:
            msg = (
                f"feature column(s) {clash} of view {view.name!r} collide with columns "
                "already in the result; rename them or use full_feature_names=True"
            )
            raise StageError(msg)
        out = out.hstack(part)
    return out


class PolarsOfflineStore(OfflineStore):
    """Feast offline store over Parquet ``FileSource`` files, computed with Polars."""

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: Any,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        **kwargs: Any,
    ) -> RetrievalJob:
        """Point-in-time features for every entity row (pandas, Polars or Arrow).

        Each entity row is returned exactly once, in order; a view with no row for
        the key inside ``[t - ttl, t]`` gives nulls.
        """
        if entity_df is None or isinstance(entity_df, str):
            msg = (
                "the Polars offline store needs an entity frame (pandas, Polars or Arrow); "
                f"SQL queries and timestamp ranges are not supported. Got {type(entity_df)!r}."
            )
            raise StageError(msg)
        entity = as_polars(entity_df)
        entity_ts = _entity_timestamp_column(entity)
        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        views_to_features, _ = _get_requested_feature_views_to_features_dict(
            feature_refs, feature_views, odfvs
        )
        lo, hi = entity[entity_ts].min(), entity[entity_ts].max()
        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=[c for c in entity.columns if c != entity_ts],
            min_event_timestamp=lo if isinstance(lo, dt.datetime) else None,
            max_event_timestamp=hi if isinstance(hi, dt.datetime) else None,
        )
        return PolarsRetrievalJob(
            lambda: historical_features(
                config, dict(views_to_features), entity, full_feature_names=full_feature_names
            ),
            full_feature_names=full_feature_names,
            on_demand_feature_views=odfvs,
            metadata=metadata,
        )

    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None,
        start_date: dt.datetime,
        end_date: dt.datetime,
    ) -> RetrievalJob:
        """The latest row per key with ``start_date <= timestamp <= end_date`` (materialization)."""

        def compute() -> pl.DataFrame:
            frame = _pull(
                config,
                data_source,
                join_key_columns,
                feature_name_columns,
                timestamp_field,
                created_timestamp_column,
                start_date,
                end_date,
            )
            order = [timestamp_field]
            if created_timestamp_column:
                order.append(created_timestamp_column)
            frame = frame.sort(order, nulls_last=False, maintain_order=True)
            if join_key_columns:
                frame = frame.unique(subset=join_key_columns, keep="last", maintain_order=True)
            else:
                frame = frame.tail(1)
            return frame

        return PolarsRetrievalJob(compute, full_feature_names=False)

    @staticmethod
    def pull_all_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None = None,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
    ) -> RetrievalJob:
        """Every row with ``start_date <= timestamp <= end_date`` (either bound optional)."""
        return PolarsRetrievalJob(
            lambda: _pull(
                config,
                data_source,
                join_key_columns,
                feature_name_columns,
                timestamp_field,
                created_timestamp_column,
                start_date,
                end_date,
            ),
            full_feature_names=False,
        )

    @staticmethod
    def offline_write_batch(
        config: RepoConfig,
        feature_view: FeatureView,
        table: pa.Table,
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Append ``table`` to the view's Parquet source, atomically."""
        from longtail.io import write_parquet

        path = Path(source_path(config, _batch_source(feature_view)))
        new = as_polars(table)
        if path.exists():
            old = pl.read_parquet(path)
            new = pl.concat([old, new.select(old.columns).cast(old.schema)], how="vertical")
        write_parquet(new, path)
        if progress is not None:
            progress(table.num_rows)

    def validate_data_source(self, config: RepoConfig, data_source: DataSource) -> None:
        """Warn (not fail) when a source file is not there yet: ``feast apply`` may come first."""
        path = source_path(config, data_source)
        if "://" not in path and not Path(path).exists():
            log.warning("feature source %r not found at %s (yet)", data_source.name, path)

    def get_table_column_names_and_types_from_data_source(
        self, config: RepoConfig, data_source: DataSource
    ) -> Iterable[tuple[str, str]]:
        """Column names and Arrow types of the source file."""
        path = source_path(config, data_source)
        remote = _remote(path)
        if remote is None:
            schema = pq.read_schema(path)
        else:
            schema = pads.dataset(remote[1], filesystem=remote[0], format="parquet").schema
        return [(f.name, str(f.type)) for f in schema]


def _pull(
    config: RepoConfig,
    data_source: DataSource,
    join_key_columns: list[str],
    feature_name_columns: list[str],
    timestamp_field: str,
    created_timestamp_column: str | None,
    start_date: dt.datetime | None,
    end_date: dt.datetime | None,
) -> pl.DataFrame:
    cols = [*join_key_columns, *feature_name_columns, timestamp_field]
    if created_timestamp_column:
        cols.append(created_timestamp_column)
    if data_source.name == RECS_SOURCE and not Path(source_path(config, data_source)).exists():
        # Lists exist only after the first scoring run; before it, `feast materialize`
        # has nothing to load for them (and must not fail the feature views beside them).
        log.warning("no recommendation lists yet (%s): nothing to load", data_source.name)
        known = {**dict.fromkeys(join_key_columns, pl.Int64()), **RECS_SCHEMA}
        schema = {c: known.get(c, pl.Datetime("us", "UTC")) for c in dict.fromkeys(cols)}
        return pl.DataFrame(schema=schema)
    scan = _scan(config, data_source).select(list(dict.fromkeys(cols)))
    return _time_bounds(scan, timestamp_field, start_date, end_date).collect()
