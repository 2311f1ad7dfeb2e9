"""An object-store data directory, so a Ray cluster needs no filesystem its nodes share.

A :class:`DataStore` is ``s3://bucket/prefix`` (the ``[storage]`` section) seen through
pyarrow's :class:`pyarrow.fs.S3FileSystem`; it holds the same folders as a data
directory, named by the same :class:`longtail.paths.Layout` (``store.layout`` gives
object keys, ``bucket/prefix/training/train.parquet``, instead of local paths).

Rules an object store imposes:

- **No rename, so no folder swap.** A dataset folder (the resampled train rows) is
  committed by writing its parts under a fresh ``run-<id>/`` prefix, then one PUT of
  ``_manifest.json`` (:class:`longtail.artifacts.DatasetManifest`) that lists them;
  readers read through the manifest only (:meth:`DataStore.dataset_files`), so parts of
  a write in progress, or of a crashed one, are never seen. The run before the new one
  is kept (a reader that read the old manifest still finds its parts); older ones go.
- **Single files are atomic.** An object appears whole on its one PUT, so a JSON
  artifact or a single Parquet file is simply written; a saved model is its weights and
  manifest first, then the ``current.json`` pointer.
- **Credentials only from the environment** (``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, as the AWS SDK reads them), never
  from the config file, never logged. The filesystem object travels to Ray workers
  pickled, with the keys the driver read (as Ray Train's ``storage_filesystem``
  does), so workers need no credentials of their own; without ``AWS_*`` keys every
  process asks the AWS default chain (a profile, the node's instance role).

``jobs/sync.py`` copies folders between the driver's local ``data_dir`` and the store.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from longtail.artifacts import DatasetManifest
from longtail.config import Config, StorageConfig
from longtail.errors import StageError
from longtail.io import DEBRIS, atomic_dir, atomic_file
from longtail.paths import DATASET_MANIFEST, RAY_RUNS, RUN_PREFIX, Layout

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = [
    "DATASET_FOLDERS",
    "DataStore",
    "StagedDataset",
    "announce_local_stage",
    "store_of",
]

log = logging.getLogger(__name__)

#: Folders (relative to a data directory) that are datasets of Parquet parts; in an
#: object store they are committed through their manifest. A recommendations
#: partition's own ``_manifest.json`` travels as the commit record's ``meta``.
DATASET_FOLDERS = ("resampled/*/train", "recommendations/date=*")
#: What sync never copies: Ray's run state, the lock folder, the local staging area.
_NEVER_SYNCED = frozenset({RAY_RUNS, "runs", ".staging", "_ray"})

M = TypeVar("M", bound=BaseModel)


def _is_dataset_folder(rel: PurePosixPath) -> bool:
    return any(fnmatch.fnmatchcase(str(rel), pattern) for pattern in DATASET_FOLDERS)


def _json_text(obj: Any) -> str:
    # The format of longtail.io.write_json, so a pulled file is byte-identical.
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


@dataclass(frozen=True)
class StagedDataset:
    """A dataset write in progress: parts go under ``prefix`` (``<folder>/run-<id>``)."""

    folder: str
    run: str

    @property
    def prefix(self) -> str:
        """The key prefix the parts are written under."""
        return f"{self.folder}/{self.run}"

    def part(self, index: int) -> str:
        """The key of part ``index`` (``part-00007.parquet``)."""
        return f"{self.prefix}/part-{index:05d}.parquet"


@dataclass(frozen=True)
class DataStore:
    """A data directory in an S3-compatible object store.

    Build it with :meth:`from_config`; ``layout`` names its objects.
    """

    bucket: str
    prefix: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    _fs: list[Any] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Made here, on the driver, so a pickled copy (a Ray task's) carries its keys.
        if not self._fs:
            self._fs.append(self._make_filesystem())

    @classmethod
    def from_config(cls, storage: StorageConfig) -> DataStore | None:
        """The store of a ``[storage]`` section, or None when it names none."""
        if storage.uri is None:
            return None
        rest = storage.uri.partition("://")[2].strip("/")
        bucket, _, prefix = rest.partition("/")
        return cls(
            bucket=bucket,
            prefix=prefix.strip("/"),
            endpoint_url=storage.endpoint_url,
            region=storage.region,
        )

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.root}"

    @property
    def root(self) -> str:
        """``bucket/prefix``: the key every object of this store starts with."""
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    @cached_property
    def layout(self) -> Layout:
        """The data directory's layout, as object keys (``bucket/prefix/...``), not local paths."""
        return Layout(Path(self.root))

    @property
    def filesystem(self) -> pafs.S3FileSystem:
        """The pyarrow filesystem (credentials from the ``AWS_*`` of the process that made it)."""
        fs: pafs.S3FileSystem = self._fs[0]
        return fs

    def _make_filesystem(self) -> pafs.S3FileSystem:
        import pyarrow.fs as pafs

        options: dict[str, Any] = {"region": self.region}
        # Keys from the driver's environment go into the filesystem object, so the
        # Ray workers it is pickled to need none; without them each process asks the
        # AWS default chain (a profile, the node's instance role).
        if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
            options |= {
                "access_key": os.environ["AWS_ACCESS_KEY_ID"],
                "secret_key": os.environ["AWS_SECRET_ACCESS_KEY"],
                "session_token": os.environ.get("AWS_SESSION_TOKEN"),
            }
        if self.endpoint_url is not None:
            parts = urlsplit(self.endpoint_url)
            options |= {"endpoint_override": parts.netloc, "scheme": parts.scheme}
        return pafs.S3FileSystem(**options)

    def url(self, key: str | Path) -> str:
        """``s3://`` URL of ``key`` (for messages and logs)."""
        return f"s3://{key}"

    # ----------------------------------------------------------------- single objects
    def is_file(self, key: str | Path) -> bool:
        """Whether the object ``key`` exists."""
        import pyarrow.fs as pafs

        return bool(self.filesystem.get_file_info(str(key)).type == pafs.FileType.File)

    def read_bytes(self, key: str | Path) -> bytes:
        """The content of object ``key``.

        Raises
        ------
        StageError
            It does not exist or cannot be read.
        """
        try:
            with self.filesystem.open_input_stream(str(key)) as fh:
                return bytes(fh.read())
        except (OSError, FileNotFoundError) as exc:
            msg = f"cannot read {self.url(key)}: {exc}"
            raise StageError(msg) from exc

    def write_bytes(self, key: str | Path, data: bytes) -> None:
        """Write object ``key`` (it appears whole, or not at all)."""
        with self.filesystem.open_output_stream(str(key)) as fh:
            fh.write(data)

    def read_json(self, key: str | Path) -> Any:
        """Parse object ``key`` as JSON (:class:`StageError` when missing or not JSON)."""
        try:
            return json.loads(self.read_bytes(key))
        except json.JSONDecodeError as exc:
            msg = f"{self.url(key)} is not JSON: {exc}"
            raise StageError(msg) from exc

    def write_json(self, key: str | Path, obj: Any) -> None:
        """Write ``obj`` as JSON, in the format of :func:`longtail.io.write_json`."""
        self.write_bytes(key, _json_text(obj).encode("utf-8"))

    def read_artifact(self, model: type[M], key: str | Path) -> M:
        """Load object ``key`` as the artifact ``model`` (:class:`StageError` when it is not)."""
        raw = self.read_json(key)
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            msg = f"{self.url(key)} is not a {model.__name__}: {exc}"
            raise StageError(msg) from exc

    def read_table(self, keys: Sequence[str]) -> pa.Table:
        """Read Parquet objects into one Arrow table (their columns only: no hive keys)."""
        import pyarrow.parquet as pq

        # A partition's parts sit under ``date=D/``: that is a place, not a column.
        return pq.ParquetDataset(list(keys), filesystem=self.filesystem, partitioning=None).read()

    def parquet_bytes(self, key: str | Path) -> int:
        """Uncompressed size of a Parquet object, from its footer."""
        import pyarrow.parquet as pq

        with self.filesystem.open_input_file(str(key)) as fh:
            meta = pq.read_metadata(fh)
        return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))

    # ----------------------------------------------------------------- dataset folders
    @contextlib.contextmanager
    def stage_dataset(
        self, folder: str | Path, *, meta: dict[str, Any] | None = None
    ) -> Iterator[StagedDataset]:
        """Yield a fresh run prefix in ``folder``; commit its parts when the block ends.

        On success the parts under the run prefix are listed in ``folder/_manifest.json``
        (one PUT: the commit, carrying ``meta``), then runs older than the one it
        replaced are deleted. On an exception the run's parts are deleted and the
        folder's manifest is left as it was, so readers go on reading the previous
        dataset.
        """
        staged = StagedDataset(str(folder), f"{RUN_PREFIX}{uuid.uuid4().hex[:16]}")
        try:
            yield staged
        except BaseException:
            with contextlib.suppress(OSError):
                self.filesystem.delete_dir(staged.prefix)
            raise
        previous = self._manifest(folder)
        files = sorted(self._list(staged.prefix))
        if not files:
            msg = f"nothing was written to {self.url(staged.prefix)}"
            raise StageError(msg)
        manifest = DatasetManifest(run=staged.run, files=files, meta=meta)
        self.write_json(f"{folder}/{DATASET_MANIFEST}", manifest.model_dump())
        keep = {staged.run} | ({previous.run} if previous else set())
        for run in self._runs(folder) - keep:
            with contextlib.suppress(OSError):
                self.filesystem.delete_dir(f"{folder}/{run}")

    def dataset_files(self, folder: str | Path) -> list[str]:
        """The keys of the committed parts of a dataset ``folder``, in order.

        Raises
        ------
        StageError
            The folder has no committed dataset (no ``_manifest.json``).
        """
        manifest = self._manifest(folder)
        if manifest is None:
            msg = f"no committed dataset at {self.url(folder)} (no {DATASET_MANIFEST})"
            raise StageError(msg)
        return [f"{folder}/{manifest.run}/{name}" for name in manifest.files]

    def dataset_meta(self, folder: str | Path) -> dict[str, Any] | None:
        """The ``meta`` of a committed dataset ``folder`` (None when it has none)."""
        manifest = self._manifest(folder)
        return None if manifest is None else manifest.meta

    def has_dataset(self, folder: str | Path) -> bool:
        """Whether ``folder`` holds a committed dataset."""
        return self.is_file(f"{folder}/{DATASET_MANIFEST}")

    def _manifest(self, folder: str | Path) -> DatasetManifest | None:
        key = f"{folder}/{DATASET_MANIFEST}"
        return self.read_artifact(DatasetManifest, key) if self.is_file(key) else None

    def _list(self, prefix: str) -> list[str]:
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(prefix, allow_not_found=True, recursive=True)
        infos = self.filesystem.get_file_info(selector)
        return [
            info.path.removeprefix(prefix + "/")
            for info in infos
            if info.type == pafs.FileType.File
        ]

    def _runs(self, folder: str | Path) -> set[str]:
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(str(folder), allow_not_found=True)
        return {
            info.base_name
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.Directory and info.base_name.startswith(RUN_PREFIX)
        }

    def delete(self, prefix: str | Path) -> None:
        """Delete every object under ``prefix`` (nothing when there is none)."""
        import pyarrow.fs as pafs

        if self.filesystem.get_file_info(str(prefix)).type != pafs.FileType.NotFound:
            self.filesystem.delete_dir(str(prefix))

    def download_folder(self, key: str | Path, local: Path) -> Path:
        """Copy every object under ``key`` into the local folder ``local``; return it.

        Raises
        ------
        StageError
            There is no object under ``key``.
        """
        names = self._list(str(key))
        if not names:
            msg = f"nothing at {self.url(key)}"
            raise StageError(msg)
        for name in names:
            target = local / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read_bytes(f"{key}/{name}"))
        return local

    def upload_folder(self, local: Path, key: str | Path) -> list[str]:
        """Upload every file of ``local`` under ``key``, one object per file; return the keys."""
        written = []
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            target = f"{key}/{path.relative_to(local).as_posix()}"
            self.write_bytes(target, path.read_bytes())
            written.append(target)
        return written

    # ----------------------------------------------------------------- sync
    def push(self, local_root: Path, folders: Sequence[str]) -> list[str]:
        """Copy ``folders`` of the local data directory ``local_root`` into the store.

        Files become objects one to one; a dataset folder (:data:`DATASET_FOLDERS`) is
        committed through its manifest. Returns the keys written.

        Raises
        ------
        StageError
            A named folder is not in the local data directory.
        """
        written: list[str] = []
        for name in folders:
            top = local_root / name
            if not top.exists():
                msg = f"nothing to push: {top} does not exist"
                raise StageError(msg)
            for path in _sync_walk(top, local_root):
                rel = PurePosixPath(path.relative_to(local_root).as_posix())
                key = f"{self.root}/{rel}"
                if path.is_dir():
                    own = path / DATASET_MANIFEST
                    meta = json.loads(own.read_text(encoding="utf-8")) if own.is_file() else None
                    with self.stage_dataset(key, meta=meta) as staged:
                        for part in sorted(path.glob("*.parquet")):
                            target = f"{staged.prefix}/{part.name}"
                            self.write_bytes(target, part.read_bytes())
                            written.append(target)
                else:
                    self.write_bytes(key, path.read_bytes())
                    written.append(key)
        return written

    def pull(self, local_root: Path, folders: Sequence[str]) -> list[Path]:
        """Copy ``folders`` of the store into the local data directory ``local_root``.

        Objects become files one to one (each written atomically); a dataset folder is
        pulled as its manifest's parts into a local folder swapped in whole. Parts of
        uncommitted runs are never copied. Returns the local paths written.
        """
        import pyarrow.fs as pafs

        written: list[Path] = []
        for name in folders:
            top = f"{self.root}/{name}"
            selector = pafs.FileSelector(top, allow_not_found=True, recursive=True)
            keys = sorted(
                info.path
                for info in self.filesystem.get_file_info(selector)
                if info.type == pafs.FileType.File
            )
            if not keys:
                msg = f"nothing to pull: no objects under {self.url(top)}"
                raise StageError(msg)
            datasets = self._dataset_folders(keys)
            for folder in datasets:
                written += self._pull_dataset(folder, local_root)
            for key in keys:
                rel = PurePosixPath(key.removeprefix(self.root + "/"))
                if any(part in _NEVER_SYNCED for part in rel.parts) or any(
                    key.startswith(folder + "/") for folder in datasets
                ):
                    continue
                target = local_root / rel
                with atomic_file(target) as tmp:
                    tmp.write_bytes(self.read_bytes(key))
                written.append(target)
        return written

    def _dataset_folders(self, keys: list[str]) -> list[str]:
        """The committed dataset folders among ``keys`` (those with a manifest)."""
        folders = [k.rsplit("/", 1)[0] for k in keys if k.endswith("/" + DATASET_MANIFEST)]
        return sorted(
            f for f in folders if _is_dataset_folder(PurePosixPath(f.removeprefix(self.root + "/")))
        )

    def _pull_dataset(self, folder: str, local_root: Path) -> list[Path]:
        target = local_root / folder.removeprefix(self.root + "/")
        written = []
        manifest = self._manifest(folder)
        with atomic_dir(target) as tmp:
            for key in self.dataset_files(folder):
                part = tmp / key.rsplit("/", 1)[1]
                part.write_bytes(self.read_bytes(key))
                written.append(target / part.name)
            if manifest is not None and manifest.meta is not None:
                (tmp / DATASET_MANIFEST).write_text(_json_text(manifest.meta), encoding="utf-8")
                written.append(target / DATASET_MANIFEST)
        return written


def _sync_walk(top: Path, root: Path) -> Iterator[Path]:
    """Files under ``top``, with dataset folders yielded whole; debris and Ray state left out."""
    if top.is_file():
        yield top
        return
    rel = PurePosixPath(top.relative_to(root).as_posix())
    if _is_dataset_folder(rel):
        yield top
        return
    for child in sorted(top.iterdir()):
        if child.name in _NEVER_SYNCED or DEBRIS.match(child.name):
            continue
        yield from _sync_walk(child, root)


def store_of(cfg: Config) -> DataStore | None:
    """The object store of ``cfg`` (its ``[storage]`` section), or None for a local data_dir."""
    return DataStore.from_config(cfg.storage)


def announce_local_stage(cfg: Config, *, stage: str) -> None:
    """Say, when ``cfg`` names an object store, that a driver-side stage writes the local copy.

    Ingest, features and validation run on the driver only: they read and write the
    local ``data_dir`` even with ``[storage]`` set; ``jobs/sync.py --push`` then puts
    what the Ray stages read into the store. One line on stderr, so the local write
    is never silent.
    """
    if cfg.storage.uri is None:
        return
    print(
        f"{stage}: runs on the driver and writes the local working copy {cfg.data_dir}, "
        f"not {cfg.storage.uri}; push what the Ray stages read with "
        "jobs/sync.py --push training",
        file=sys.stderr,
    )
