"""The training driver: datasets and the TorchTrainer run, then :mod:`longtail.train.finish`.

Only the training split may come resampled; validation and test are read as they
are from ``training/{validation,test}.parquet``. Calibration, evaluation and
saving are :func:`longtail.train.finish.finish_model`, shared with tune's trials.

With a :class:`longtail.storage.DataStore` for the data directory, the splits are read
from the object store (Ray Data on the workers, pyarrow on the driver), Ray Train keeps
its checkpoints there (``RunConfig(storage_filesystem=...)``), and the finished model is
uploaded (weights and manifest, then the ``current.json`` pointer): no Ray node needs
a disk another one sees.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import torch

from longtail.config import Config, TrainConfig
from longtail.errors import StageError
from longtail.models.arch import ConversionModel, ModelConfig
from longtail.models.calibration import Calibration
from longtail.models.features import FeatureSpec, encode_arrow, fit_feature_spec
from longtail.paths import CURRENT_MODEL, Layout
from longtail.ray_runtime import cluster_shape, ensure_ray
from longtail.resampling import SamplingReport
from longtail.schema import EVENT_TIME, LABEL
from longtail.storage import DataStore
from longtail.train.finish import (
    ClassCounts,
    Finished,
    ModelRun,
    build_model_config,
    evaluate,
    finish_model,
    load_best_weights,
    model_with_weights,
)
from longtail.train.ray_configs import Resources, build_ray_configs, resolve_resources
from longtail.train.state import Progress
from longtail.train.worker import (
    DIRECT_READ,
    IN_PROCESS,
    PREFETCHED,
    TRAIN,
    VALIDATION,
    DirectRead,
    WorkerConfig,
    train_loop_per_worker,
)

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    import ray.data

__all__ = [
    "TrainInputs",
    "TrainResult",
    "build_model_config",
    "evaluate",
    "fit",
    "resolve_inputs",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainInputs:
    """Which files a run trains and evaluates on, and their sampling correction.

    With ``store`` set the paths are the object store's keys (``bucket/prefix/...``).
    """

    strategy: str
    train_files: tuple[Path, ...]
    validation: Path
    test: Path
    sampling_report: SamplingReport | None
    store: DataStore | None = None

    @property
    def filesystem(self) -> pafs.FileSystem | None:
        """The filesystem of the paths: None for local files."""
        return self.store.filesystem if self.store else None

    def read(self, path: Path) -> pl.DataFrame:
        """One split file, read on the driver."""
        if self.store is None:
            return pl.read_parquet(path)
        return pl.DataFrame(pl.from_arrow(self.store.read_table([str(path)])))

    def scan_train(self) -> pl.LazyFrame:
        """The train files, lazily."""
        if self.store is None:
            return pl.scan_parquet([str(p) for p in self.train_files])
        import pyarrow.dataset as pads

        files = [str(p) for p in self.train_files]
        return pl.scan_pyarrow_dataset(
            pads.dataset(files, format="parquet", filesystem=self.store.filesystem)
        )


def resolve_inputs(layout: Layout | DataStore, *, strategy: str) -> TrainInputs:
    """Pick the training files for ``strategy``.

    "none", or a strategy without a ``resampled/<strategy>/train/`` folder, trains
    on ``training/train.parquet`` with no prior correction (the effective
    strategy is then "none"). A resampled folder must come with its
    ``sampling_report.json``. In an object store (``layout`` a
    :class:`~longtail.storage.DataStore`) the resampled rows are the parts its
    manifest lists.

    Raises
    ------
    StageError
        A split file is missing, the resampled folder is empty, or its report is missing.
    """
    if isinstance(layout, DataStore):
        return _resolve_in_store(layout, strategy=strategy)
    validation = layout.split("validation")
    test = layout.split("test")
    plain = layout.split("train")
    for path in (validation, test):
        if not path.is_file():
            msg = f"missing split {path}; build the training set first"
            raise StageError(msg)
    folder = layout.resampled_train(strategy)
    if strategy != "none" and folder.is_dir():
        files = tuple(sorted(folder.rglob("*.parquet")))
        if not files:
            msg = f"resampled train {folder} holds no Parquet files"
            raise StageError(msg)
        report_path = layout.sampling_report(strategy)
        if not report_path.is_file():
            msg = f"resampled train {folder} lacks its {report_path.name}; cannot correct the prior"
            raise StageError(msg)
        return TrainInputs(strategy, files, validation, test, SamplingReport.load(report_path))
    if strategy != "none":
        log.warning(
            "no resampled train for strategy %r at %s; training on %s", strategy, folder, plain
        )
    if not plain.is_file():
        msg = f"missing split {plain}; build the training set first"
        raise StageError(msg)
    return TrainInputs("none", (plain,), validation, test, None)


def _resolve_in_store(store: DataStore, *, strategy: str) -> TrainInputs:
    """:func:`resolve_inputs` in an object store."""
    layout = store.layout
    validation, test, plain = (layout.split(n) for n in ("validation", "test", "train"))
    for path in (validation, test):
        if not store.is_file(path):
            msg = (
                f"missing split {store.url(path)}; build the training set and push it "
                "(jobs/sync.py --push training)"
            )
            raise StageError(msg)
    folder = layout.resampled_train(strategy)
    if strategy != "none" and store.has_dataset(folder):
        files = tuple(Path(k) for k in store.dataset_files(folder))
        report_key = layout.sampling_report(strategy)
        if not store.is_file(report_key):
            msg = (
                f"resampled train {store.url(folder)} lacks its {report_key.name}; "
                "cannot correct the prior"
            )
            raise StageError(msg)
        report = store.read_artifact(SamplingReport, report_key)
        return TrainInputs(strategy, files, validation, test, report, store)
    if strategy != "none":
        log.warning(
            "no resampled train for strategy %r at %s; training on %s",
            strategy,
            store.url(folder),
            store.url(plain),
        )
    if not store.is_file(plain):
        msg = f"missing split {store.url(plain)}; push it with jobs/sync.py --push training"
        raise StageError(msg)
    return TrainInputs("none", (plain,), validation, test, None, store)


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    ``path`` is the model's folder: a local path, or its key in the object store;
    ``location`` says which, for people (a path, or an ``s3://`` URL).
    """

    version: str
    path: Path
    location: str
    metrics: pl.DataFrame
    ranking: pl.DataFrame
    calibration: Calibration
    history: list[dict[str, float]]
    restarts: int
    resources: dict[str, Any]

    @classmethod
    def of(
        cls,
        done: Finished,
        *,
        version: str,
        progress: Progress,
        resources: Resources,
        store: DataStore | None = None,
    ) -> TrainResult:
        """The result of a fit from its finished model and the run's progress."""
        if done.metrics is None or done.ranking is None:
            msg = f"model {version} was finished without its metrics"
            raise StageError(msg)
        return cls(
            version=version,
            path=done.path,
            location=store.url(done.path) if store else str(done.path),
            metrics=done.metrics,
            ranking=done.ranking,
            calibration=done.calibration,
            history=progress.history,
            restarts=progress.restarts,
            resources=dict(resources.__dict__),
        )


def _datasets(inputs: TrainInputs, spec: FeatureSpec) -> dict[str, Any]:
    import ray.data

    ensure_ray()  # Ray Data would start a Ray of its own, without the project's options

    def encoded(paths: list[str]) -> ray.data.Dataset:
        fn: Any = encode_arrow
        return ray.data.read_parquet(paths, filesystem=inputs.filesystem).map_batches(
            fn, batch_format="pyarrow", fn_kwargs={"spec": spec, "label": LABEL}
        )

    return {
        TRAIN: encoded([str(p) for p in inputs.train_files]),
        # Fixed and read every epoch by every worker: computed once.
        VALIDATION: encoded([str(inputs.validation)]).materialize(),
    }


def _window(frame: pl.LazyFrame) -> dict[str, Any]:
    row = (
        frame.select(
            pl.len().alias("rows"),
            pl.col(EVENT_TIME).min().alias("start"),
            pl.col(EVENT_TIME).max().alias("end"),
            pl.col(LABEL).cast(pl.Float64).mean().alias("label_rate"),
        )
        .collect()
        .row(0, named=True)
    )
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}


def _fresh_run_folder(
    storage: Path, version: str, worker: WorkerConfig, resources: Resources, inputs: TrainInputs
) -> str:
    """The Ray run folder of this fit: ``<version>.<fingerprint>``, other runs of it removed.

    Ray Train resumes a run whose folder exists. Keyed by a fingerprint of
    everything that shapes the weights (worker config with model sizes, loss,
    learning rate, seed and epochs; resources; the bytes of the input files),
    only a crashed run of the *same* fit resumes; a run of another config or
    other inputs under the same version starts fresh, and its stale folder goes.
    """
    digest = hashlib.sha256()
    settings = {k: v for k, v in worker.to_dict().items() if k != "failure_marker"}
    digest.update(json.dumps([settings, vars(resources)], sort_keys=True, default=str).encode())
    store = inputs.store
    for path in (*inputs.train_files, inputs.validation):
        digest.update(path.name.encode())
        if store is None:
            with path.open("rb") as fh:
                digest.update(hashlib.file_digest(fh, "sha256").digest())
        else:
            digest.update(hashlib.sha256(store.read_bytes(path)).digest())
    name = f"{version}.{digest.hexdigest()[:12]}"
    ours = re.compile(re.escape(version) + r"(?:\.[0-9a-f]{12})?")
    for other in _run_folders(storage, store):
        if other.name != name and ours.fullmatch(other.name):
            log.info("removing the Ray run folder of another fit: %s", other)
            _remove_run(other, store)
    return name


def _run_folders(storage: Path, store: DataStore | None) -> list[Path]:
    if store is None:
        return list(storage.iterdir()) if storage.is_dir() else []
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(str(storage), allow_not_found=True)
    infos = store.filesystem.get_file_info(selector)
    return [Path(i.path) for i in infos if i.type == pafs.FileType.Directory]


def _remove_run(folder: Path, store: DataStore | None) -> None:
    if store is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        store.delete(folder)


def fit(
    layout: Layout | DataStore,
    cfg: Config,
    *,
    strategy: str | None = None,
    version: str | None = None,
    max_train_rows: int | None = None,
    simulate_failure_at_epoch: int | None = None,
) -> TrainResult:
    """Train, calibrate, evaluate and save a conversion model.

    Long because its parameters are documented; its steps (inputs, the Ray run,
    :func:`~longtail.train.finish.finish_model`) are their own functions.

    Parameters
    ----------
    layout
        Where the splits, resampled train and models live: a local data directory,
        or an object store (the model is then uploaded there, and ``path`` of the
        result is its key).
    cfg
        The whole configuration (``train``, ``seed``, ``resampling.strategy``,
        ``feature_store.feature_service`` are used).
    strategy
        Resampling strategy to train on; default ``cfg.resampling.strategy``.
    version
        Folder name under ``models/``; default a UTC timestamp with strategy and loss.
    max_train_rows
        Not used to subsample silently: when set and the train set is larger, a
        :class:`StageError` is raised (a guard for smoke runs).
    simulate_failure_at_epoch
        Testing hook: the worker process dies once after checkpointing this epoch,
        and the run must resume from that checkpoint.

    Returns
    -------
    TrainResult
        The saved model's version and folder, validation and test metrics
        (overall and per bucket), ranking metrics, calibration and history.

    Raises
    ------
    StageError
        Missing inputs, a failed Ray run, or a split without both classes.
    """
    tc = cfg.train
    requested = strategy or cfg.resampling.strategy
    inputs = resolve_inputs(layout, strategy=requested)
    train_lazy = inputs.scan_train()
    spec = fit_feature_spec(
        train_lazy,
        hash_buckets_user=tc.hash_buckets_user,
        hash_buckets_item=tc.hash_buckets_item,
        sequence_length=tc.sequence_length,
    )
    counts = _class_counts(train_lazy, max_rows=max_train_rows)
    version = version or (
        dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{inputs.strategy}-{tc.loss}"
    )
    paths = layout.layout if isinstance(layout, DataStore) else layout
    model, progress, resources = _train(
        paths, cfg, inputs, spec, counts, version=version, fail_at=simulate_failure_at_epoch
    )
    validation = inputs.read(inputs.validation)
    test = inputs.read(inputs.test)
    run = ModelRun(
        strategy=inputs.strategy,
        sampling=inputs.sampling_report,
        train=tc,
        counts=counts,
        seed=cfg.seed,
        feature_service=cfg.feature_store.feature_service,
        strategy_requested=requested,
        data_window={name: _window(f) for name, f in _splits(train_lazy, validation, test)},
        history=progress.history,
        best_epoch=progress.best_epoch,
        resources=resources.__dict__,
    )

    def finish(models_dir: Path) -> Finished:
        return finish_model(
            model,
            spec,
            run=run,
            validation=validation,
            test=test,
            models_dir=models_dir,
            version=version,
            ranking_k=tc.ranking_k,
        )

    if inputs.store is None:
        done = finish(paths.models)
    else:
        done = _finish_into_store(finish, inputs.store, version=version)
    return TrainResult.of(
        done, version=version, progress=progress, resources=resources, store=inputs.store
    )


def _finish_into_store(
    finish: Callable[[Path], Finished], store: DataStore, *, version: str
) -> Finished:
    """Finish the model in a local temporary models folder, then upload it.

    The version folder's objects (weights, manifest) go first, the ``current.json``
    pointer last, so scoring never follows a pointer to a model not yet whole.
    """
    models = store.layout.models
    with tempfile.TemporaryDirectory(prefix="longtail-model-") as tmp:
        done = finish(Path(tmp))
        store.upload_folder(done.path, models / version)
        store.write_bytes(store.layout.current_model, (Path(tmp) / CURRENT_MODEL).read_bytes())
    log.info("uploaded model %s to %s", version, store.url(models / version))
    return replace(done, path=models / version)


def _splits(
    train: pl.LazyFrame, validation: pl.DataFrame, test: pl.DataFrame
) -> list[tuple[str, pl.LazyFrame]]:
    return [("train", train), ("validation", validation.lazy()), ("test", test.lazy())]


def _class_counts(train: pl.LazyFrame, *, max_rows: int | None) -> ClassCounts:
    """Train rows per class; both classes must be there (and at most ``max_rows`` rows)."""
    counts = (
        train.select(pl.col(LABEL).cast(pl.Int64).sum().alias("pos"), pl.len().alias("n"))
        .collect()
        .row(0, named=True)
    )
    n_pos, n_neg = int(counts["pos"]), int(counts["n"]) - int(counts["pos"])
    if n_pos == 0 or n_neg == 0:
        msg = f"training rows need both classes. Got {n_pos} positives and {n_neg} negatives."
        raise StageError(msg)
    if max_rows is not None and counts["n"] > max_rows:
        msg = f"train has {counts['n']} rows, above max_train_rows={max_rows}"
        raise StageError(msg)
    return ClassCounts(negative=n_neg, positive=n_pos)


def _worker_reads(
    tc: TrainConfig,
    inputs: TrainInputs,
    spec: FeatureSpec,
    counts: ClassCounts,
    resources: Resources,
) -> tuple[DirectRead | None, dict[str, Any] | None]:
    """How the workers get their rows: ``(DirectRead, None)`` or ``(None, Ray datasets)``.

    When each worker's equal share fits in ``cache_train_rows`` the workers read the
    files themselves with pyarrow, without Ray Data's start-up; above it Ray Data
    streams them.
    """
    share = -(-(counts.negative + counts.positive) // resources.num_workers)
    if share > tc.cache_train_rows:
        return None, _datasets(inputs, spec)
    store = inputs.store

    def located(path: Path) -> str:  # a worker's cwd is not the driver's
        return str(path if store else path.resolve())

    direct = DirectRead(
        train_files=tuple(located(p) for p in inputs.train_files),
        validation=located(inputs.validation),
        spec=spec,
        filesystem=inputs.filesystem,
    )
    return direct, None


def _loop_config(
    worker: WorkerConfig, direct: DirectRead | None, resources: Resources
) -> dict[str, Any]:
    """The ``train_loop_config``: the worker's settings, its direct read and where it runs.

    In the driver's process (CPU) the read is started here, so that it runs while Ray
    Train is imported and set up: the first epoch waited for it.
    """
    loop_config = worker.to_dict()
    if direct is not None:
        loop_config[DIRECT_READ] = direct
        if resources.in_process and not resources.use_gpu:
            loop_config[PREFETCHED] = direct.start(
                rank=0, world=1, val_batch_size=worker.val_batch_size, device=torch.device("cpu")
            )
    loop_config[IN_PROCESS] = resources.in_process
    return loop_config


def _fast_controller_polls() -> None:
    """Have Ray Train's controller poll the workers every 0.25 s, unless the user set it.

    The controller polls every 2 s by default, and a run waits for a poll at its
    start, after its reports and at its end: 6-8 s of a 20 s run with three reports
    on 2 cores (benchmarks/train_phases.py). Polls are cheap; set the variable to
    keep Ray's default. The driver's value reaches the controller.
    """
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")


def _resources(tc: TrainConfig, *, crash_test: bool) -> Resources:
    """What the run uses on the cluster :func:`ensure_ray` connects to (:func:`resolve_resources`).

    A local Ray that is not running yet is not started to find out (:func:`cluster_shape`).
    """
    shape = cluster_shape()
    resources = resolve_resources(
        tc, cluster_gpus=shape.gpus, cluster_cpus=shape.cpus, cluster_nodes=shape.nodes
    )
    if crash_test and resources.in_process:
        msg = "a simulated worker crash needs Ray Train workers: set [train] in_process = false"
        raise StageError(msg)
    return resources


@contextlib.contextmanager
def _torch_threads(resources: Resources) -> Iterator[None]:
    """In the driver's process, train on ``cpus_per_worker`` threads, as a worker would.

    Ray gives a worker actor ``OMP_NUM_THREADS = cpus_per_worker``; in-process the
    run keeps to the same share of the machine, and the driver's count comes back.
    """
    if not resources.in_process:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(int(resources.cpus_per_worker), 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _trained_model(
    result: Any, model_cfg: ModelConfig, *, version: str
) -> tuple[ConversionModel, Progress]:
    """The best epoch's model of a finished run, from its return value or its checkpoint."""
    if result.error is not None:
        msg = f"training run {version} failed: {result.error!r}"
        raise StageError(msg) from result.error
    if result.return_value is not None:  # in the driver's process: no checkpoint
        progress, best = result.return_value
        return model_with_weights(model_cfg, best), progress
    if result.checkpoint is None:
        msg = f"training run {version} left no checkpoint"
        raise StageError(msg)
    with result.checkpoint.as_directory() as folder:
        return load_best_weights(Path(folder), model_cfg)


def _train(
    layout: Layout,
    cfg: Config,
    inputs: TrainInputs,
    spec: FeatureSpec,
    counts: ClassCounts,
    *,
    version: str,
    fail_at: int | None,
) -> tuple[ConversionModel, Progress, Resources]:
    """The TorchTrainer run: the model with its best epoch's weights, the progress, the resources.

    Raises
    ------
    StageError
        The Ray run failed or left no checkpoint.
    """
    tc = cfg.train
    model_cfg = build_model_config(tc, spec)
    resources = _resources(tc, crash_test=bool(fail_at))
    storage = layout.ray_runs
    store = inputs.store
    worker = WorkerConfig.from_train(
        tc,
        model=model_cfg.to_json(),
        loss=tc.loss,
        loss_params=dict(tc.loss_params),
        n_negative=counts.negative,
        n_positive=counts.positive,
        epochs=tc.epochs,
        learning_rate=tc.learning_rate,
        seed=cfg.seed,
        mixed_precision=resources.mixed_precision,
        shuffle_buffer_rows=tc.shuffle_buffer_rows,
        simulate_failure_at_epoch=fail_at,
    )
    run_name = _fresh_run_folder(storage, version, worker, resources, inputs)
    if fail_at:
        # The testing hook's marker is a local file (the test runs one machine).
        where = storage if store is None else Path(tempfile.mkdtemp(prefix="longtail-fail-"))
        marker = where / run_name / "simulated_failure"
        worker = replace(worker, failure_marker=str(marker))
    direct, datasets = _worker_reads(tc, inputs, spec, counts, resources)
    loop_config = _loop_config(worker, direct, resources)
    from ray.train.torch import TorchTrainer

    ray_cfgs = build_ray_configs(
        tc,
        resources,
        storage_path=storage,
        name=run_name,
        storage_filesystem=store.filesystem if store else None,
    )
    if not resources.in_process:
        ensure_ray()  # for the worker actors
    elif datasets is None:
        # Ray Train's local mode reading the files itself needs no running Ray: a job
        # whose steps before this one started none does not pay its start here.
        log.info("training in the driver's process, reading the splits directly: no Ray needed")
    _fast_controller_polls()
    trainer = TorchTrainer(
        # Ray's stub says the loop returns None; local mode hands its value back.
        train_loop_per_worker,  # type: ignore[arg-type]
        train_loop_config=loop_config,
        scaling_config=ray_cfgs.scaling,
        run_config=ray_cfgs.run,
        datasets=datasets,
        dataset_config=ray_cfgs.data,
    )
    with _torch_threads(resources):
        result = trainer.fit()
    model, progress = _trained_model(result, model_cfg, version=version)
    # Done: its checkpoints must never be resumed by a later run (--force, a retrain).
    _remove_run(storage / run_name, store)
    return model, progress, resources
