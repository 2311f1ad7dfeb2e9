"""The typed Ray Train configs, built in one place from :class:`TrainConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig

from longtail.config import TrainConfig
from longtail.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = ["RayTrainConfigs", "Resources", "build_ray_configs", "resolve_resources"]


@dataclass(frozen=True)
class Resources:
    """What the run uses once the config's ``None`` ("what the cluster has") is resolved."""

    num_workers: int
    use_gpu: bool
    mixed_precision: bool
    cpus_per_worker: float
    in_process: bool = False


def resolve_resources(
    cfg: TrainConfig, *, cluster_gpus: float, cluster_cpus: float, cluster_nodes: int = 1
) -> Resources:
    """Fill in workers, GPU, precision and where the loop runs where the config leaves None.

    GPUs present: one worker per GPU and bfloat16 autocast. No GPU: one CPU worker
    in float32 (on a small machine, more CPU workers only split the same cores).
    ``cpus_per_worker`` is capped at what the cluster has. One CPU worker on a
    one-node cluster runs in the driver's process (Ray Train's local mode): a worker
    actor there would only add its start-up, on the same machine.

    Raises
    ------
    ConfigError
        ``in_process = true`` with more than one worker (local mode runs one).
    """
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else cluster_gpus >= 1
    if cfg.num_workers is not None:
        workers = cfg.num_workers
    else:
        workers = max(int(cluster_gpus), 1) if use_gpu else 1
    mixed = cfg.mixed_precision if cfg.mixed_precision is not None else use_gpu
    cpus = min(cfg.cpus_per_worker, max(cluster_cpus, 1.0))
    if cfg.in_process is None:
        in_process = workers == 1 and not use_gpu and cluster_nodes == 1
    elif cfg.in_process and workers != 1:
        msg = f"[train] in_process = true runs one worker, but num_workers resolves to {workers}"
        raise ConfigError(msg)
    else:
        in_process = cfg.in_process
    return Resources(
        num_workers=workers,
        use_gpu=use_gpu,
        mixed_precision=mixed,
        cpus_per_worker=cpus,
        in_process=in_process,
    )


@dataclass(frozen=True)
class RayTrainConfigs:
    """Every config object :class:`ray.train.torch.TorchTrainer` takes."""

    scaling: ScalingConfig
    run: RunConfig
    failure: FailureConfig
    checkpoint: CheckpointConfig
    data: DataConfig


def build_ray_configs(
    cfg: TrainConfig,
    resources: Resources,
    *,
    storage_path: Path,
    name: str,
    storage_filesystem: pafs.FileSystem | None = None,
) -> RayTrainConfigs:
    """Build the Ray configs for one training run.

    Parameters
    ----------
    cfg
        The ``train`` section.
    resources
        From :func:`resolve_resources`.
    storage_path
        Where Ray keeps checkpoints (absolute; made so here), or a key prefix of
        ``storage_filesystem``.
    storage_filesystem
        An object store's filesystem (``storage_path`` is then ``bucket/prefix/...``);
        None: the local (or a mounted, shared) disk.
    name
        The run's folder under ``storage_path``; a rerun with the same name resumes.

    Returns
    -------
    RayTrainConfigs
        Checkpoints keep the latest two (each holds the best weights so far);
        the worker group restarts from the last one up to ``max_failures`` times;
        only the train set is split across workers, every worker sees all of
        validation.
    """
    failure = FailureConfig(max_failures=cfg.max_failures)
    checkpoint = CheckpointConfig(num_to_keep=2)
    run = RunConfig(
        name=name,
        storage_path=str(storage_path if storage_filesystem else storage_path.resolve()),
        storage_filesystem=storage_filesystem,
        failure_config=failure,
        checkpoint_config=checkpoint,
    )
    # num_workers=0 is Ray Train's local mode: the loop runs in the calling process.
    scaling = ScalingConfig(
        num_workers=0 if resources.in_process else resources.num_workers,
        use_gpu=resources.use_gpu,
        resources_per_worker={"CPU": resources.cpus_per_worker},
    )
    return RayTrainConfigs(
        scaling=scaling,
        run=run,
        failure=failure,
        checkpoint=checkpoint,
        data=DataConfig(datasets_to_split=["train"]),
    )
