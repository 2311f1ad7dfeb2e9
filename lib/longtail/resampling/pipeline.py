"""Resample the train split: stratified subsampling, then a sampler per group, on Ray Data.

The flow, identical in :func:`resample_frame` (one process) and
:func:`resample_train_split` (Ray Data):

1. refuse any row whose ``split`` is not ``train``;
2. if ``target_rows`` is set, keep each (label, popularity bucket) cell's share of
   ``target_rows`` rows, chosen by a seeded hash of the row keys;
3. give every row its stratum value and split each stratum larger than
   ``max_group_rows`` into ``ceil(n / max_group_rows)`` parts by the row hash;
4. apply the sampler to each group (stratum value x part), rows sorted by key so the
   result does not depend on block order, with a seed derived from the group name;
5. write the rows, and a :class:`SamplingReport` of counts before and after.

On Ray, a train split of at most :data:`IN_MEMORY_MAX_BYTES` (uncompressed Parquet
size) is read whole on the driver and split into groups there, with no shuffle:
a group's Arrow table is put in the object store when a started Ray worker is free,
and a Ray task resamples it and writes its own Parquet part; while no worker is free
(fresh workers spend seconds importing the samplers) the driver resamples the
smallest group left itself. Larger splits stream through Ray Data
(read, tag, ``groupby(group).map_groups``, write), which costs a sort shuffle.

With a :class:`longtail.storage.DataStore` instead of a :class:`Layout` the same flow
reads the train split from the object store and writes the parts there (each task
uploads its own part under a fresh run prefix, committed by the dataset manifest) and
the report beside them: nothing touches a local data directory, so the Ray workers
need no shared disk.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from longtail.config import ResamplingConfig
from longtail.errors import StageError
from longtail.io import atomic_dir
from longtail.paths import SAMPLING_REPORT, Layout, dataset_part
from longtail.resampling.report import ClassCounts, SamplingReport
from longtail.resampling.strategies import FrameSampler, check_params, refuse_non_train_rows
from longtail.resampling.stratify import (
    STRATUM_COLUMN,
    group_parts,
    keep_mask,
    row_hash,
    stratum_values,
    subsample_thresholds,
)
from longtail.schema import (
    ITEM_CATEGORY,
    LABEL,
    POPULARITY_BUCKET,
    SPLIT,
    TRAINING_KEYS,
    USER_ID,
)
from longtail.storage import DataStore

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = [
    "IN_MEMORY_MAX_BYTES",
    "resample_frame",
    "resample_train_split",
    "resampled_dir",
    "train_split_path",
]

log = logging.getLogger(__name__)

GROUP_COLUMN: Final = "__group"
SYNTHETIC_COLUMN: Final = "__synthetic"
# Salt so the group-splitting hash and the subsampling hash are independent.
_PART_SALT: Final = 0x5EED
#: Largest train split (uncompressed Parquet bytes, from the file's metadata) that
#: :func:`resample_train_split` reads whole on the driver instead of shuffling it
#: with Ray Data. The driver then holds the split about twice (the frame and the
#: object-store copies of its groups); 1M rows x 20 features is about 0.2 GB.
IN_MEMORY_MAX_BYTES: Final = 4 * 2**30
_MAX_WARM_TASKS: Final = 64
_MARKS: Final = (STRATUM_COLUMN, LABEL, SYNTHETIC_COLUMN)
# Parts are read once, by training. Dense features barely compress (random-looking
# floats: zstd 9.8 MB, lz4 10.5 MB for 90k rows x 27 columns), and lz4 writes in 60%
# of zstd's time (28 against 46 ms) and reads in half: writing was a third of a group's cost.
PART_COMPRESSION: Final = "lz4"


def train_split_path(layout: Layout) -> Path:
    """Return the train split read by resampling: ``DATA_DIR/training/train.parquet``."""
    return layout.split("train")


def resampled_dir(layout: Layout, strategy: str) -> Path:
    """Return ``DATA_DIR/resampled/<strategy>``, which holds ``train/`` and the report."""
    return layout.resampled_strategy(strategy)


def _correction_by(cfg: ResamplingConfig) -> str | None:
    # The column scored rows carry that names the stratum (see resampling/report.py).
    return {"label_bucket": POPULARITY_BUCKET, "category": ITEM_CATEGORY}.get(cfg.stratum)


class _Plan:
    """What the driver decides from the key columns alone, before any sampler runs."""

    def __init__(self, keys: pl.DataFrame, cfg: ResamplingConfig, *, seed: int) -> None:
        refuse_non_train_rows(keys)
        self.cfg = cfg
        self.seed = seed
        self.thresholds = (
            None
            if cfg.target_rows is None
            else subsample_thresholds(keys, target_rows=cfg.target_rows, seed=seed)
        )
        tagged = keys.with_columns(
            stratum_values(keys, cfg.stratum, user_hash_buckets=cfg.user_hash_buckets)
        )
        self.before = _counts(tagged)
        kept = tagged if self.thresholds is None else tagged.filter(self._keep(keys))
        sizes = dict(kept.group_by(STRATUM_COLUMN).len().iter_rows())
        self.parts = group_parts(sizes, max_group_rows=cfg.max_group_rows)

    def _keep(self, frame: pl.DataFrame) -> pl.Series:
        if self.thresholds is None:
            return pl.Series(np.ones(frame.height, dtype=np.bool_))
        return pl.Series(keep_mask(frame, self.thresholds, seed=self.seed))

    def tag(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Subsample ``frame`` and add the stratum and group columns."""
        refuse_non_train_rows(frame)
        frame = frame.filter(self._keep(frame))
        strata = stratum_values(
            frame, self.cfg.stratum, user_hash_buckets=self.cfg.user_hash_buckets
        )
        n_parts = strata.replace_strict(self.parts, default=1, return_dtype=pl.UInt64)
        part = row_hash(frame, seed=self.seed ^ _PART_SALT) % n_parts.to_numpy()
        group = strata + "#" + pl.Series(part).cast(pl.String)
        return frame.with_columns(strata, group.alias(GROUP_COLUMN))


def _counts(frame: pl.DataFrame) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = {}
    for stratum, label, n in frame.group_by(STRATUM_COLUMN, LABEL).len().iter_rows():
        out.setdefault(str(stratum), {0: 0, 1: 0})[int(label)] = int(n)
    return out


def _key_columns(frame_columns: list[str], cfg: ResamplingConfig) -> list[str]:
    wanted = [*TRAINING_KEYS, LABEL, POPULARITY_BUCKET, ITEM_CATEGORY, USER_ID, SPLIT]
    return [c for c in dict.fromkeys(wanted) if c in frame_columns]


def resample_group(
    frame: pl.DataFrame, *, strategy: str, params: dict[str, Any], seed: int
) -> pl.DataFrame:
    """Resample one group's rows (with the group column); mark the synthetic rows.

    Rows are sorted by key first, so the output does not depend on the order the
    rows arrived in.
    """
    group = str(frame.get_column(GROUP_COLUMN)[0]) if frame.height else ""
    order = [c for c in (*TRAINING_KEYS, LABEL) if c in frame.columns]
    frame = frame.sort(order, nulls_last=True)
    sampler = FrameSampler(strategy, params=params, seed=seed)
    out = sampler.fit_resample(frame, group=group)
    n_new = sum(sampler.n_synthetic_.values())
    marks = np.zeros(out.height, dtype=np.bool_)
    if n_new:
        marks[out.height - n_new :] = True
    return out.with_columns(pl.Series(SYNTHETIC_COLUMN, marks))


def _report(
    cfg: ResamplingConfig,
    *,
    seed: int,
    before: dict[str, dict[int, int]],
    after_rows: list[tuple[Any, Any, Any, Any]],
) -> SamplingReport:
    after: dict[str, dict[int, int]] = {}
    synthetic = {0: 0, 1: 0}
    for stratum, label, made, n in after_rows:
        cell = after.setdefault(str(stratum), {0: 0, 1: 0})
        cell[int(label)] += int(n)
        if made:
            synthetic[int(label)] += int(n)
    strata = {
        k: ClassCounts(before=before.get(k, {0: 0, 1: 0}), after=after.get(k, {0: 0, 1: 0}))
        for k in sorted(set(before) | set(after))
    }
    return SamplingReport.build(
        strategy=cfg.strategy,
        stratum=cfg.stratum,
        params=cfg.params,
        seed=seed,
        strata=strata,
        correction_by=_correction_by(cfg),
        synthetic=synthetic,
    )


def _base_seed(cfg: ResamplingConfig, seed: int) -> int:
    check_params(cfg.strategy, cfg.params)
    return FrameSampler(cfg.strategy, params=cfg.params, seed=seed).effective_seed


def resample_frame(
    frame: pl.DataFrame, cfg: ResamplingConfig, *, seed: int
) -> tuple[pl.DataFrame, SamplingReport]:
    """Resample train rows in this process, exactly as :func:`resample_train_split` does.

    Parameters
    ----------
    frame
        Train rows (every ``split`` value must be ``train``).
    cfg
        Strategy, stratum, group cap, sampler parameters and subsampling target.
    seed
        Base seed, used when ``cfg.params`` has no ``random_state``.

    Returns
    -------
    tuple[pl.DataFrame, SamplingReport]
        The resampled rows (same columns and dtypes, groups in sorted order) and the report.

    Raises
    ------
    ConfigError
        Unknown strategy or parameter.
    StageError
        Validation or test rows, or a column the stratum needs is missing.
    """
    base = _base_seed(cfg, seed)
    plan = _Plan(frame.select(_key_columns(frame.columns, cfg)), cfg, seed=base)
    tagged = plan.tag(frame)
    pieces = [
        resample_group(part, strategy=cfg.strategy, params=cfg.params, seed=base)
        for _, part in sorted(tagged.group_by(GROUP_COLUMN), key=lambda kv: str(kv[0][0]))
    ]
    empty = tagged.with_columns(pl.lit(False).alias(SYNTHETIC_COLUMN))
    out = pl.concat(pieces) if pieces else empty
    after_rows = out.group_by(STRATUM_COLUMN, LABEL, SYNTHETIC_COLUMN).len().rows()
    report = _report(cfg, seed=base, before=plan.before, after_rows=after_rows)
    return out.drop(STRATUM_COLUMN, GROUP_COLUMN, SYNTHETIC_COLUMN), report


def resample_train_split(
    layout: Layout | DataStore, cfg: ResamplingConfig, *, seed: int
) -> SamplingReport:
    """Resample ``DATA_DIR/training/train.parquet`` on Ray and write the result.

    Writes ``DATA_DIR/resampled/<strategy>/train/`` (Parquet parts, swapped in whole)
    and ``DATA_DIR/resampled/<strategy>/sampling_report.json``; with a
    :class:`~longtail.storage.DataStore`, the same keys in the object store (the parts
    committed by their manifest), and nothing on a local disk. Uses the running Ray
    (or starts a local one). A split of at most :data:`IN_MEMORY_MAX_BYTES` is split
    into groups on the driver and resampled by Ray tasks (the driver takes groups while
    no worker is free); a larger one streams through a Ray Data shuffle. Both give the
    rows of :func:`resample_frame`.

    Parameters
    ----------
    layout
        Paths under the data directory, or the object store that holds it.
    cfg
        The resampling section of the config.
    seed
        Base seed, used when ``cfg.params`` has no ``random_state``.

    Returns
    -------
    SamplingReport
        The report that was written.

    Raises
    ------
    ConfigError
        Unknown strategy or parameter (checked before any data is read).
    StageError
        The train split is missing or holds validation/test rows.
    """
    base = _base_seed(cfg, seed)
    store, paths = (layout, layout.layout) if isinstance(layout, DataStore) else (None, layout)
    source = train_split_path(paths)
    if not (store.is_file(source) if store else source.is_file()):
        where = store.url(source) if store else source
        msg = f"train split not found: {where}. Build the training set first."
        if store:
            msg += " (push it with jobs/sync.py --push training)"
        raise StageError(msg)
    target = resampled_dir(paths, cfg.strategy)
    size = store.parquet_bytes(source) if store else _uncompressed_bytes(source)
    if size <= IN_MEMORY_MAX_BYTES:
        report = _resample_in_memory(
            source, target, cfg, seed=base, warming=_warm_workers(), store=store
        )
    else:
        report = _resample_streaming(source, target, cfg, seed=base, store=store)
    if store:
        store.write_json(target / SAMPLING_REPORT, report.to_dict())
    else:
        report.write(target / SAMPLING_REPORT)
    log.info(
        "resampled %s with %r: %s -> %s rows",
        store.url(source) if store else source,
        cfg.strategy,
        report.overall.before,
        report.overall.after,
    )
    return report


def _ready() -> bool:
    """A no-op task: running it makes a worker import this module and the samplers."""
    return True


def _warm_workers() -> list[Any]:
    """Start one no-op task per CPU but one, so workers import imblearn while the driver plans.

    A fresh Ray worker needs seconds to import scikit-learn and imbalanced-learn
    (5-6 s each on a loaded 2-core machine); that overlaps the driver's read, plan
    and split instead of following it.
    """
    from longtail.ray_runtime import ensure_ray

    ray = ensure_ray()  # the caller's Ray, or a local one with the project's runtime env
    cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
    # One CPU is left to the driver, which resamples groups too (see _run_groups):
    # on 2 cores, driver + 1 worker beat driver + 2 workers importing at once
    # (SMOTE on 1M rows 4.3 s against 4.6-5.3 s, benchmarks/resampling.py).
    n = min(_MAX_WARM_TASKS, max(1, int(cpus) - 1))
    task: Any = ray.remote(_ready).options(num_cpus=1)
    return [task.remote() for _ in range(n)]


def _uncompressed_bytes(source: Path) -> int:
    import pyarrow.parquet as pq

    meta = pq.read_metadata(source)
    return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))


def _resample_part(
    table: pa.Table,
    path: str,
    strategy: str,
    params: dict[str, Any],
    seed: int,
    fs: pafs.FileSystem | None = None,
) -> list[tuple[Any, Any, Any, Any]]:
    """Resample one group's rows, write them to ``path``; return the report's counts.

    ``path`` is a local file, or a key of the filesystem ``fs`` (an object store).

    Runs as a Ray task with one CPU; the BLAS/OpenMP pools of numpy and scikit-learn
    are held to one thread (Ray already sets ``OMP_NUM_THREADS=1`` for such a task;
    the limit keeps it so if that changes), since the other tasks use the other cores.
    """
    frame = pl.from_arrow(table)
    if not isinstance(frame, pl.DataFrame):  # pragma: no cover - a table gives a frame
        msg = f"expected an Arrow table for {path}. Got {type(table).__name__} instead."
        raise StageError(msg)
    with threadpool_limits(limits=1):
        out = resample_group(frame, strategy=strategy, params=params, seed=seed)
    _write_part(out.drop(STRATUM_COLUMN, GROUP_COLUMN, SYNTHETIC_COLUMN), path, fs)
    return _part_counts(out)


def _write_part(frame: pl.DataFrame, path: str, fs: pafs.FileSystem | None) -> None:
    """One Parquet part, to a local path or (the same bytes) to an object of ``fs``."""
    if fs is None:
        frame.write_parquet(path, compression=PART_COMPRESSION, statistics=True)
        return
    with fs.open_output_stream(path) as fh:
        frame.write_parquet(fh, compression=PART_COMPRESSION, statistics=True)


def _part_counts(out: pl.DataFrame) -> list[tuple[Any, Any, Any, Any]]:
    """Rows per (stratum, label, synthetic) of resampled rows, for the report.

    A group is one stratum (its name is the stratum and a part number), so the
    label and mark are counted with numpy; a frame with more strata (a streamed
    batch may hold several groups) is grouped.
    """
    if out.height == 0:
        return []
    strata = out.get_column(STRATUM_COLUMN)
    if strata.n_unique() > 1:
        return out.group_by(list(_MARKS)).len().rows()
    cell = out.get_column(LABEL).cast(pl.Int64).to_numpy() * 2 + out.get_column(
        SYNTHETIC_COLUMN
    ).to_numpy().astype(np.int64)
    counts = np.bincount(cell, minlength=4)
    stratum = strata[0]
    return [(stratum, c // 2, bool(c % 2), int(counts[c])) for c in range(4) if counts[c]]


def _staged_parts(
    target: Path, store: DataStore | None
) -> contextlib.AbstractContextManager[tuple[str, pafs.FileSystem | None]]:
    """Where the parts of ``target/train`` go: a folder swapped in, or a committed run prefix."""

    @contextlib.contextmanager
    def local() -> Iterator[tuple[str, pafs.FileSystem | None]]:
        with atomic_dir(target / "train") as tmp:
            yield str(tmp), None

    @contextlib.contextmanager
    def remote(store: DataStore) -> Iterator[tuple[str, pafs.FileSystem | None]]:
        with store.stage_dataset(target / "train") as staged:
            yield staged.prefix, store.filesystem

    return local() if store is None else remote(store)


def _read_split(source: Path, store: DataStore | None) -> pl.DataFrame:
    if store is None:
        return pl.read_parquet(source)
    return pl.DataFrame(pl.from_arrow(store.read_table([str(source)])))


def _resample_in_memory(
    source: Path,
    target: Path,
    cfg: ResamplingConfig,
    *,
    seed: int,
    warming: list[Any],
    store: DataStore | None,
) -> SamplingReport:
    """Read the split on the driver, resample each group in a Ray task; no shuffle."""
    frame = _read_split(source, store)
    plan = _Plan(frame.select(_key_columns(frame.columns, cfg)), cfg, seed=seed)
    tagged = plan.tag(frame)
    del frame
    groups = tagged.partition_by(GROUP_COLUMN, as_dict=True, include_key=True)
    names = sorted(groups, key=lambda key: str(key[0]))
    frames = [groups.pop(name) for name in names]
    after_rows: list[tuple[Any, Any, Any, Any]] = []
    with _staged_parts(target, store) as (tmp, fs):
        if not frames:
            _write_part(tagged.drop(STRATUM_COLUMN, GROUP_COLUMN), f"{tmp}/{dataset_part(0)}", fs)
        del tagged
        # The part number is the group's rank by name, so the files do not depend
        # on which process resampled which group.
        paths = [f"{tmp}/{dataset_part(i)}" for i in range(len(frames))]
        after_rows = _run_groups(frames, paths, cfg, seed=seed, warming=warming, fs=fs)
        report = _report(cfg, seed=seed, before=plan.before, after_rows=after_rows)
    return report


def _run_groups(
    frames: list[pl.DataFrame],
    paths: list[str],
    cfg: ResamplingConfig,
    *,
    seed: int,
    warming: list[Any],
    fs: pafs.FileSystem | None,
) -> list[tuple[Any, Any, Any, Any]]:
    """Resample every group: Ray tasks take the largest, the driver the smallest.

    A group goes to a Ray task only when a started worker is free (the warm-up
    tasks say when workers have started and imported the samplers); otherwise
    the driver, which has everything imported already, resamples the smallest
    group left itself instead of waiting. Fresh workers need seconds to import
    scikit-learn and imbalanced-learn, about as long as SMOTE takes on 1M rows.
    """
    import ray

    task: Any = ray.remote(_resample_part).options(num_cpus=1)
    params = dict(cfg.params)
    # Largest first from the front, smallest from the back.
    queue = deque(sorted(range(len(frames)), key=lambda i: (-frames[i].height, i)))
    starting: list[Any] = list(warming)
    running: list[Any] = []
    ready = 0
    rows: list[tuple[Any, Any, Any, Any]] = []
    while queue:
        if starting:
            started, starting = ray.wait(starting, num_returns=len(starting), timeout=0)
            ready += len(started)
        if running:
            finished, running = ray.wait(running, num_returns=len(running), timeout=0)
            rows += [r for part in ray.get(finished) for r in part]
        while queue and len(running) < ready:
            i = queue.popleft()
            table = ray.put(frames[i].to_arrow())
            running.append(task.remote(table, paths[i], cfg.strategy, params, seed, fs))
            frames[i] = frames[i].clear()  # the object store holds it now
        if queue:
            i = queue.pop()
            rows += _resample_part(frames[i].to_arrow(), paths[i], cfg.strategy, params, seed, fs)
    rows += [r for part in ray.get(running) for r in part]
    ray.get(starting)
    return rows


def _resample_streaming(
    source: Path, target: Path, cfg: ResamplingConfig, *, seed: int, store: DataStore | None
) -> SamplingReport:
    """Ray Data: read, tag per block, shuffle by group, resample per group, write."""
    import ray.data
    from ray.data.context import ShuffleStrategy

    base = seed
    fs = store.filesystem if store else None
    if store is None:
        columns = list(pl.read_parquet_schema(source))
        keys = pl.read_parquet(source, columns=_key_columns(columns, cfg))
    else:
        import pyarrow.parquet as pq

        with store.filesystem.open_input_file(str(source)) as fh:
            columns = pq.read_schema(fh).names
        table = pq.read_table(str(source), columns=_key_columns(columns, cfg), filesystem=fs)
        keys = pl.DataFrame(pl.from_arrow(table))
    plan = _Plan(keys, cfg, seed=base)
    del keys

    def tag(table: pa.Table) -> pa.Table:
        return plan.tag(pl.from_arrow(table)).to_arrow()  # type: ignore[arg-type]

    strategy, params = cfg.strategy, dict(cfg.params)

    def resample(table: pa.Table) -> pa.Table:
        frame = pl.from_arrow(table)
        return resample_group(frame, strategy=strategy, params=params, seed=base).to_arrow()  # type: ignore[arg-type]

    # One shuffle partition per group (Ray's default of hundreds costs seconds of
    # scheduling), and the task-based sort shuffle: on a small cluster it starts
    # faster than the actor-based hash shuffle. The caller's context is restored.
    n_groups = max(1, sum(plan.parts.values()))
    context = ray.data.DataContext.get_current()
    previous = context.shuffle_strategy
    context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        ds = ray.data.read_parquet(str(source), filesystem=fs).map_batches(
            tag, batch_format="pyarrow"
        )
        out = (
            ds.groupby(GROUP_COLUMN, num_partitions=n_groups)
            .map_groups(resample, batch_format="pyarrow")
            .materialize()
        )
    finally:
        context.shuffle_strategy = previous
    after_rows: list[tuple[Any, Any, Any, Any]] = []
    for batch in out.select_columns(list(_MARKS)).iter_batches(batch_format="pyarrow"):
        after_rows += _part_counts(pl.DataFrame(pl.from_arrow(batch)))
    report = _report(cfg, seed=base, before=plan.before, after_rows=after_rows)
    with _staged_parts(target, store) as (tmp, fs):
        out.drop_columns([STRATUM_COLUMN, GROUP_COLUMN, SYNTHETIC_COLUMN]).write_parquet(
            tmp, compression=PART_COMPRESSION, filesystem=fs
        )
    return report
