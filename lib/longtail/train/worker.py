"""The Ray Train worker: epochs over the train shard, validation, checkpoints, early stopping.

The tune job imports :func:`train_loop_per_worker` and builds its ``config`` with
:meth:`WorkerConfig.to_dict`, overriding single keys (e.g. ``learning_rate``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from longtail.config import TrainConfig
from longtail.errors import ConfigError
from longtail.losses import make_loss
from longtail.metrics import ranked_aucs
from longtail.models.arch import ConversionModel, ModelConfig
from longtail.models.features import FeatureSpec, encode_arrow
from longtail.models.saved import to_tensors
from longtail.schema import LABEL
from longtail.train.optim import Adam, Optimizer, SparseAdam
from longtail.train.state import Progress, read_state, write_state

__all__ = [
    "DIRECT_READ",
    "IN_PROCESS",
    "PREFETCHED",
    "DirectRead",
    "EpochEnd",
    "WorkerConfig",
    "build_optimizers",
    "run_epochs",
    "train_loop_per_worker",
    "validation_metric",
]

log = logging.getLogger(__name__)
Batches = Iterable[dict[str, torch.Tensor]]
TRAIN = "train"
VALIDATION = "validation"
#: The ``train_loop_config`` key of a :class:`DirectRead` (beside the WorkerConfig's keys).
DIRECT_READ = "direct_read"
#: The ``train_loop_config`` key that says the loop runs in the driver (Ray Train's
#: local mode): it then reports no checkpoints and returns its state instead.
IN_PROCESS = "in_process"
#: The ``train_loop_config`` key of a direct read the driver has already started
#: (:meth:`DirectRead.start`), for a loop in its own process only: it is not picklable.
PREFETCHED = "prefetched"


@dataclass(frozen=True)
class DirectRead:
    """The splits a worker reads itself, with pyarrow, when its train share fits in memory.

    For a split of about 90k rows Ray Data's pipeline (a split coordinator, list and
    read tasks, the encode map, the validation dataset materialized on the driver)
    took 38 s of a 75 s train step on 2 cores, for tables pyarrow reads in well under
    a second (benchmarks/train_phases.py). Each worker reads the train files and keeps
    rows ``[rank * share, (rank + 1) * share)``, ``share = n // world`` (as Ray Data's
    ``split(equal=True)``: at most ``world - 1`` rows dropped, so DDP workers run the
    same number of steps), and the whole validation split. ``filesystem`` is the
    object store's pyarrow filesystem (None: local files); it travels to the workers
    pickled inside the config, as it does to Ray Data.
    """

    train_files: tuple[str, ...]
    validation: str
    spec: FeatureSpec
    filesystem: Any = None

    def _read(self, paths: Iterable[str]) -> Any:
        import pyarrow.dataset as pads

        data = pads.dataset(list(paths), format="parquet", filesystem=self.filesystem)
        # Only what encode reads (and the label): the split's other columns (time,
        # bucket, the recent-items list when no sequence is used) were half the read.
        # A column the files lack is left out here and named by encode's error.
        have = set(data.schema.names)
        wanted = [c for c in (*self.spec.columns, LABEL) if c in have]
        return data.to_table(columns=wanted)

    def train_shard(self, rank: int, world: int) -> dict[str, torch.Tensor]:
        """Return this worker's equal share of the train rows, encoded, as CPU tensors."""
        table = self._read(self.train_files)
        share = table.num_rows // world
        table = table.slice(rank * share, share)
        return _writable_tensors(encode_arrow(table, self.spec, label=LABEL))

    def start(
        self, *, rank: int, world: int, val_batch_size: int, device: torch.device
    ) -> _Prefetch:
        """Start reading this worker's train share and the validation split in the background."""
        import pyarrow.dataset  # noqa: F401  (imported by the caller: the read thread imports nothing)

        return _Prefetch(self, rank=rank, world=world, val_batch_size=val_batch_size, device=device)

    def validation_batches(self, *, batch_size: int, device: torch.device) -> Callable[[], Batches]:
        """The whole validation split, encoded once, in file order, as batches on ``device``."""
        table = self._read([self.validation])
        tensors = _writable_tensors(encode_arrow(table, self.spec, label=LABEL), device=device)
        n = tensors["label"].shape[0]

        def batches() -> Batches:
            for start in range(0, n, batch_size):
                yield {k: v[start : start + batch_size] for k, v in tensors.items()}

        return batches


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs; travels as the plain dict ``train_loop_config``."""

    model: dict[str, Any]
    loss: str
    n_negative: int
    n_positive: int
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    loss_params: dict[str, float] = field(default_factory=dict)
    optimizer: Literal["sparse_adam", "dense_adam"] = "sparse_adam"
    early_stopping_metric: Literal["pr_auc", "roc_auc"] = "pr_auc"
    early_stopping_patience: int = 2
    mixed_precision: bool = False
    shuffle_buffer_rows: int = 20_000
    # Hold the train shard in memory when the train split has at most this many rows
    # per worker (0: stream it from Ray Data every epoch); see _ShardCache.
    cache_train_rows: int = 0
    # Testing hook: when starting the epoch after this one (1-based), the worker
    # process exits once (the marker file records it), to simulate a crash.
    simulate_failure_at_epoch: int | None = None
    failure_marker: str | None = None

    @classmethod
    def from_train(cls, tc: TrainConfig, **fields: Any) -> WorkerConfig:
        """Build with the ``[train]`` settings every run shares; ``fields`` give the rest.

        The training job and each tune trial take batch size, optimizer and early
        stopping from ``[train]``, and differ in the model, loss, epochs and rate.
        """
        return cls(
            batch_size=tc.batch_size,
            cache_train_rows=tc.cache_train_rows,
            optimizer=tc.optimizer,
            early_stopping_metric=tc.early_stopping_metric,
            early_stopping_patience=tc.early_stopping_patience,
            **fields,
        )

    @property
    def val_batch_size(self) -> int:
        """Rows per validation batch: scoring keeps no activations, so more than training's."""
        return max(self.batch_size, 4096)

    def to_dict(self) -> dict[str, Any]:
        """Return the plain dict passed to the trainer as ``train_loop_config``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> WorkerConfig:
        """Validate and build from a ``train_loop_config`` dict.

        Raises
        ------
        ConfigError
            Unknown or missing keys.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            msg = f"train_loop_config has unknown key(s) {unknown}; accepted: {sorted(names)}"
            raise ConfigError(msg)
        try:
            return cls(**raw)
        except TypeError as exc:
            msg = f"train_loop_config is incomplete: {exc}"
            raise ConfigError(msg) from exc


def build_optimizers(model: ConversionModel, *, kind: str, learning_rate: float) -> list[Optimizer]:
    """Return the optimizers for ``model``.

    ``sparse_adam``: SparseAdam on the sparse-gradient id tables and Adam on the
    rest (the model must be built with ``sparse_ids=True``). ``dense_adam``: one
    Adam over everything (the model must have ``sparse_ids=False``). Adam is torch's
    fused kernel (CPU and CUDA): one pass over all its tensors instead of a Python loop
    of small ops per tensor, 8-15% more samples/s in ``benchmarks/training.py`` on 2
    cores; the same update, rounded differently in the last bits. Both are
    :mod:`longtail.train.optim`'s: torch's updates without ``torch.optim.Optimizer``,
    whose first use imports ``torch._dynamo``.
    """
    if kind == "dense_adam":
        if model.cfg.sparse_ids:
            msg = "optimizer 'dense_adam' needs a model built with sparse_ids=False"
            raise ConfigError(msg)
        return [Adam(model.parameters(), lr=learning_rate)]
    if kind != "sparse_adam":
        msg = f"optimizer must be 'sparse_adam' or 'dense_adam'. Got {kind!r} instead."
        raise ConfigError(msg)
    sparse = model.sparse_parameters()
    opts: list[Optimizer] = [Adam(model.dense_parameters(), lr=learning_rate)]
    if sparse:
        opts.append(SparseAdam(sparse, lr=learning_rate))
    return opts


def validation_metric(name: str, labels: np.ndarray, scores: np.ndarray) -> float:
    """Return PR-AUC or ROC-AUC of raw scores (rank-based: the sampling prior leaves them)."""
    if labels.size == 0 or labels.min() == labels.max():
        return float("nan")
    roc, ap = ranked_aucs(labels.astype(np.float64), scores.astype(np.float64))
    return roc if name == "roc_auc" else ap


def _autocast(device: torch.device, *, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of a worker's epoch: its random state and its shard's shuffle."""
    return seed * 1_000 + epoch * 10 + rank


@dataclass(frozen=True)
class EpochEnd:
    """What one epoch of :func:`run_epochs` produced, handed to its ``on_epoch`` callback.

    Attributes
    ----------
    epoch
        1-based epoch number.
    metrics
        The per-epoch report: ``epoch``, ``train_loss``, ``train_rows``,
        ``val_<early_stopping_metric>``, ``best_epoch``, ``restarts``, ``early_stopped``,
        and wall seconds: ``train_seconds`` (of which ``data_wait_seconds`` waiting
        for the next batch) and ``val_seconds``.
    val_labels, val_logits
        Validation labels and raw logits, in the order the validation batches came.
    improved
        Whether this epoch is the new best by the early-stopping metric.
    stop
        Whether early stopping ends the run after this epoch.
    """

    epoch: int
    metrics: dict[str, float]
    val_labels: np.ndarray
    val_logits: np.ndarray
    improved: bool
    stop: bool


def run_epochs(
    wc: WorkerConfig,
    *,
    model: ConversionModel,
    optimizers: list[Optimizer],
    train_batches: Callable[[int], Batches],
    val_batches: Callable[[], Batches],
    on_epoch: Callable[[EpochEnd, dict[str, torch.Tensor]], None],
    device: torch.device,
    net: torch.nn.Module | None = None,
    progress: Progress | None = None,
    best: dict[str, torch.Tensor] | None = None,
    rank: int = 0,
) -> tuple[Progress, dict[str, torch.Tensor]]:
    """The epoch loop shared by the Ray Train worker and the Ray Tune trial.

    Each epoch trains on ``train_batches(epoch)``, scores ``val_batches()``, records
    the early-stopping metric and calls ``on_epoch(end, best_weights)``, where the
    caller reports (and checkpoints). Stops after ``wc.epochs`` or early. Kept as
    one function (about 80 lines of code): the step, the per-epoch timings and the
    early-stopping state are one loop's locals, and a split would hand them around.

    Parameters
    ----------
    wc
        Loss, epochs, seed, early stopping and precision settings.
    model, optimizers
        The model (its state is what "best" copies) and its optimizers.
    train_batches
        ``epoch -> batches`` of encoded rows with a ``label`` tensor.
    val_batches
        ``() -> batches`` of the untouched validation rows, in a fixed order.
    on_epoch
        Called after every epoch with its :class:`EpochEnd` and the best weights so far.
    device
        Where the batches live.
    net
        The module to call (a DDP wrapper of ``model``); default ``model``.
    progress, best
        Resumed state; default a fresh start.
    rank
        Worker rank, mixed into the per-epoch seed.

    Returns
    -------
    tuple
        The final :class:`Progress` and the best weights (CPU tensors).
    """
    net = model if net is None else net
    progress = Progress() if progress is None else progress
    if best is None:
        best = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    loss_fn = make_loss(wc.loss, wc.loss_params, n_negative=wc.n_negative, n_positive=wc.n_positive)
    for epoch in range(progress.epochs_done + 1, wc.epochs + 1):
        _maybe_fail(wc, epoch - 1)
        _seed(_epoch_seed(wc.seed, epoch, rank))
        net.train()
        total, rows = 0.0, 0
        # Wall time of the epoch's parts, so a benchmark can tell waiting on data
        # (Ray Data read, encode, shuffle) from computing (longtail benchmarks).
        started = time.perf_counter()
        batches = iter(train_batches(epoch))  # may read the whole shard (_ShardCache)
        waited = time.perf_counter() - started
        while True:
            asked = time.perf_counter()
            batch = next(batches, None)
            waited += time.perf_counter() - asked
            if batch is None:
                break
            labels = batch.pop("label")
            with _autocast(device, enabled=wc.mixed_precision):
                logits = net(batch)
            loss = loss_fn(logits.float(), labels)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            for opt in optimizers:
                opt.step()
            total += float(loss.detach()) * labels.shape[0]
            rows += labels.shape[0]

        trained = time.perf_counter()
        net.eval()
        val_scores, val_labels = [], []
        with torch.inference_mode():
            for batch in val_batches():
                labels = batch.pop("label")
                with _autocast(device, enabled=wc.mixed_precision):
                    val_scores.append(net(batch).float().cpu().numpy())
                val_labels.append(labels.cpu().numpy())
        y = np.concatenate(val_labels) if val_labels else np.zeros(0)
        s = np.concatenate(val_scores) if val_scores else np.zeros(0)
        metric = validation_metric(wc.early_stopping_metric, y, s)

        improved, stop = progress.record(metric, epoch=epoch, patience=wc.early_stopping_patience)
        if improved:
            best = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        metrics = {
            "epoch": float(epoch),
            "train_loss": total / max(rows, 1),
            "train_rows": float(rows),
            f"val_{wc.early_stopping_metric}": metric,
            "best_epoch": float(progress.best_epoch),
            "restarts": float(progress.restarts),
            "early_stopped": float(stop and epoch < wc.epochs),
            "train_seconds": trained - started,
            "data_wait_seconds": waited,
            "val_seconds": time.perf_counter() - trained,
        }
        progress.history.append(metrics)
        on_epoch(EpochEnd(epoch, metrics, y, s, improved, stop), best)
        if stop:
            break
    return progress, best


def train_loop_per_worker(
    config: dict[str, Any],
) -> tuple[Progress, dict[str, torch.Tensor]] | None:
    """Train the conversion model on this worker's shard; the Ray Train entry point.

    Reads the ``train`` (split across workers) and ``validation`` (whole on every
    worker) dataset shards of encoded rows and runs :func:`run_epochs`. Each epoch
    it reports the training loss and the validation metric and, from rank 0, a
    checkpoint (current and best weights, optimizer state and progress as
    safetensors + JSON). On a restart it resumes from the last checkpoint. It
    stops early when the validation metric has not improved for
    ``early_stopping_patience`` epochs; every worker sees the same validation
    rows, so all stop together. One function because Ray Train ships it to the
    workers whole; its parts (shard cache, resume, the report hook) are the worker's.

    With a :class:`DirectRead` under ``config[DIRECT_READ]`` the worker reads its
    train share and the validation split itself (the trainer then has no datasets).
    With ``config[IN_PROCESS]`` (Ray Train's local mode, in the driver's process)
    nothing can restart from a checkpoint, so none is written: the function returns
    the final progress and the best weights instead (``Result.return_value``).
    """
    import ray.train
    import ray.train.torch

    direct: DirectRead | None = config.get(DIRECT_READ)
    in_process = bool(config.get(IN_PROCESS, False))
    wc = WorkerConfig.from_dict(
        {k: v for k, v in config.items() if k not in (DIRECT_READ, IN_PROCESS, PREFETCHED)}
    )
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    _seed(wc.seed + rank)
    device = ray.train.torch.get_device()
    val_batch_size = wc.val_batch_size
    # Started before the model and optimizers are built, which they overlap; in the
    # driver's process the driver may have started it already (before Ray Train's set-up).
    reads: _Prefetch | None = config.get(PREFETCHED)
    if reads is None and direct is not None:
        reads = direct.start(rank=rank, world=world, val_batch_size=val_batch_size, device=device)
    model = ConversionModel(ModelConfig.from_json(wc.model)).to(device)
    optimizers = build_optimizers(model, kind=wc.optimizer, learning_rate=wc.learning_rate)
    progress = Progress()
    best: dict[str, torch.Tensor] | None = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            progress, best = read_state(Path(folder), model=model, optimizers=optimizers)
        progress.restarts += 1
        log.info("resumed from checkpoint after epoch %d", progress.epochs_done)
    net = ray.train.torch.prepare_model(model) if world > 1 else model

    def epoch_seed(epoch: int) -> int:
        return _epoch_seed(wc.seed, epoch, int(rank))

    def next_seed(epoch: int) -> int | None:  # None after the last epoch
        return epoch_seed(epoch + 1) if epoch < wc.epochs else None

    if reads is not None:
        cache: _ShardCache | None = _ShardCache(device)
        prefetched = reads

        # The read is waited for on first use; a resumed worker (a new process) reads again.
        def val_batches() -> Batches:
            return prefetched.validation()()

        def train_batches(epoch: int) -> Batches:
            assert cache is not None
            if not cache.loaded:
                cache.load([prefetched.train_shard()])
            return cache.batches(
                batch_size=wc.batch_size, seed=epoch_seed(epoch), next_seed=next_seed(epoch)
            )

    else:
        train_shard = ray.train.get_dataset_shard(TRAIN)
        val_shard = ray.train.get_dataset_shard(VALIDATION)
        rows_per_worker = -(-(wc.n_negative + wc.n_positive) // world)
        cache = _ShardCache(device) if 0 < rows_per_worker <= wc.cache_train_rows else None

        def train_batches(epoch: int) -> Batches:
            seed = epoch_seed(epoch)
            if cache is not None:
                if not cache.loaded:
                    cache.load(train_shard.iter_torch_batches(batch_size=65_536, device="cpu"))
                return cache.batches(
                    batch_size=wc.batch_size, seed=seed, next_seed=next_seed(epoch)
                )
            return train_shard.iter_torch_batches(  # type: ignore[no-any-return]
                batch_size=wc.batch_size,
                device=device,
                local_shuffle_buffer_size=wc.shuffle_buffer_rows or None,
                local_shuffle_seed=seed if wc.shuffle_buffer_rows else None,
            )

        def val_batches() -> Batches:
            return val_shard.iter_torch_batches(  # type: ignore[no-any-return]
                batch_size=val_batch_size, device=device
            )

    def report(end: EpochEnd, best_weights: dict[str, torch.Tensor]) -> None:
        # In the driver's process nothing could resume from a checkpoint.
        if rank == 0 and not in_process:
            with tempfile.TemporaryDirectory() as tmp:
                write_state(
                    Path(tmp),
                    model=model,
                    best=best_weights,
                    optimizers=optimizers,
                    progress=progress,
                )
                ray.train.report(end.metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(end.metrics)

    state = run_epochs(
        wc,
        model=model,
        net=net,
        optimizers=optimizers,
        train_batches=train_batches,
        val_batches=val_batches,
        on_epoch=report,
        device=device,
        progress=progress,
        best=best,
        rank=rank,
    )
    return state if in_process else None


class _Prefetch:
    """A direct read's train share and validation batches, read in a background thread.

    The worker starts it before building the model and optimizers, which it overlaps
    (in the driver's process the driver starts it, before Ray Train's import and
    set-up: :meth:`DirectRead.start`); pyarrow's read and Polars' encode run with the
    GIL released. It was built to hide the read behind torch.optim's first-use import
    of ``torch._dynamo`` (about 1.2 s); since the optimizers are
    :mod:`longtail.train.optim`'s, without that import, the first epoch waits for what
    is left of the read (docs/training.md). The thread imports nothing of torch's (only
    pyarrow and Polars modules), so its imports and the main thread's cannot wait on
    each other. A read's error is raised where its result is first asked for.
    """

    def __init__(
        self,
        read: DirectRead,
        *,
        rank: int,
        world: int,
        val_batch_size: int,
        device: torch.device,
    ) -> None:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="longtail-direct-read")
        self._shard: Future[dict[str, torch.Tensor]] = pool.submit(read.train_shard, rank, world)
        self._validation: Future[Callable[[], Batches]] = pool.submit(
            read.validation_batches, batch_size=val_batch_size, device=device
        )
        pool.shutdown(wait=False)  # the thread ends after the two reads

    def train_shard(self) -> dict[str, torch.Tensor]:
        """The worker's train share (waits for its read)."""
        return self._shard.result()

    def validation(self) -> Callable[[], Batches]:
        """The validation batches (waits for their read)."""
        return self._validation.result()


class _ShardCache:
    """A worker's train shard as CPU tensors, read from Ray Data once, shuffled per epoch.

    Streaming the shard every epoch re-reads and re-encodes the Parquet files and
    passes each row through Ray Data's local shuffle buffer: on 2 cores that took
    20 times the forward and backward pass (benchmarks/train_phases.py). Held in
    memory, an epoch is a seeded permutation and index slices, as in the tune trial.
    The first epoch reads the shard (Ray Data's split of it is fixed for the run).

    An epoch given ``next_seed`` has a background thread gather the next epoch's
    shuffled copy of the shard while it trains (on a core the one-thread step leaves
    idle), so that epoch's batches are slices of it: the same rows in the same order
    as gathering each batch, which the first epoch still does. The shard is then
    held up to three times (itself, this epoch's copy and the next one's).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.tensors: dict[str, torch.Tensor] = {}
        self.loaded = False
        self._shuffled: dict[int, Future[dict[str, torch.Tensor]]] = {}

    def load(self, batches: Batches) -> None:
        parts: dict[str, list[torch.Tensor]] = {}
        for batch in batches:
            for key, value in batch.items():
                parts.setdefault(key, []).append(value)
        # One part (the direct read's whole share) is kept as it is, not copied by cat.
        self.tensors = {k: v[0] if len(v) == 1 else torch.cat(v) for k, v in parts.items()}
        self.loaded = True

    def _order(self, seed: int) -> torch.Tensor:
        n = self.tensors["label"].shape[0] if self.tensors else 0
        return torch.from_numpy(np.random.default_rng(seed).permutation(n))

    def _gather_shuffled(self, seed: int) -> dict[str, torch.Tensor]:
        order = self._order(seed)
        return {k: torch.index_select(v, 0, order) for k, v in self.tensors.items()}

    def batches(self, *, batch_size: int, seed: int, next_seed: int | None = None) -> Batches:
        """One epoch's batches in the order ``seed`` gives; ``next_seed``: gather the next's now."""
        prepared = self._shuffled.pop(seed, None)
        if next_seed is not None and next_seed not in self._shuffled:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="longtail-shuffle")
            self._shuffled[next_seed] = pool.submit(self._gather_shuffled, next_seed)
            pool.shutdown(wait=False)  # the thread ends after the gather
        if prepared is not None:
            shuffled = prepared.result()
            n = shuffled["label"].shape[0] if shuffled else 0
            for start in range(0, n, batch_size):
                end = start + batch_size
                yield {k: v[start:end].to(self.device) for k, v in shuffled.items()}
            return
        order = self._order(seed)
        for start in range(0, order.shape[0], batch_size):
            idx = order[start : start + batch_size]
            # index_select, not v[idx]: the same rows, but advanced indexing's general
            # machinery took 0.34 s of each 930k-row epoch's gathers and this 0.1 s.
            yield {
                k: torch.index_select(v, 0, idx).to(self.device) for k, v in self.tensors.items()
            }


def _writable_tensors(
    arrays: dict[str, np.ndarray], *, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    # Columns that Arrow lends read-only are copied: torch tensors assume they may write.
    return to_tensors(
        {k: np.require(v, requirements=["W"]) for k, v in arrays.items()}, device=device
    )


def _maybe_fail(wc: WorkerConfig, epoch: int) -> None:
    if wc.simulate_failure_at_epoch != epoch or wc.failure_marker is None:
        return
    marker = Path(wc.failure_marker)
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    import ray.train

    # Wait until Ray Train has registered the reported checkpoints, as it has
    # for any crash that comes later than right after a report.
    ray.train.get_all_reported_checkpoints(timeout_s=120)
    marker.write_text(f"simulated failure after epoch {epoch}\n", encoding="utf-8")
    log.warning("simulating a worker crash after epoch %d", epoch)
    os._exit(1)
