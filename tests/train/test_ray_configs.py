from __future__ import annotations

from pathlib import Path

import pytest

from longtail.config import TrainConfig
from longtail.errors import ConfigError
from longtail.train import build_ray_configs, resolve_resources

pytestmark = pytest.mark.unit


def test_defaults_follow_the_cluster() -> None:
    cpu = resolve_resources(TrainConfig(), cluster_gpus=0, cluster_cpus=2)
    assert (cpu.num_workers, cpu.use_gpu, cpu.mixed_precision) == (1, False, False)
    gpu = resolve_resources(TrainConfig(), cluster_gpus=4, cluster_cpus=32)
    assert (gpu.num_workers, gpu.use_gpu, gpu.mixed_precision) == (4, True, True)


def test_explicit_settings_win_over_the_cluster() -> None:
    cfg = TrainConfig(num_workers=2, use_gpu=False, mixed_precision=True, cpus_per_worker=8)
    res = resolve_resources(cfg, cluster_gpus=4, cluster_cpus=2)
    assert (res.num_workers, res.use_gpu, res.mixed_precision) == (2, False, True)
    assert res.cpus_per_worker == 2  # capped at the cluster


def test_one_cpu_worker_on_one_node_trains_in_the_drivers_process() -> None:
    def where(cfg: TrainConfig, *, gpus: float = 0, nodes: int = 1) -> bool:
        res = resolve_resources(cfg, cluster_gpus=gpus, cluster_cpus=2, cluster_nodes=nodes)
        return res.in_process

    assert where(TrainConfig()) is True
    assert where(TrainConfig(), nodes=3) is False  # the driver may sit on a small head node
    assert where(TrainConfig(), gpus=1) is False
    assert where(TrainConfig(num_workers=2)) is False
    assert where(TrainConfig(in_process=False)) is False
    assert where(TrainConfig(in_process=True), nodes=3) is True
    with pytest.raises(ConfigError, match="num_workers resolves to 2"):
        where(TrainConfig(in_process=True, num_workers=2))


def test_ray_configs_are_built_from_train_config(tmp_path: Path) -> None:
    cfg = TrainConfig(max_failures=3, in_process=False)
    res = resolve_resources(cfg, cluster_gpus=0, cluster_cpus=2)
    out = build_ray_configs(cfg, res, storage_path=tmp_path / "runs", name="v1")
    assert out.failure.max_failures == 3
    assert out.run.failure_config is out.failure
    assert out.run.name == "v1"
    assert Path(out.run.storage_path).is_absolute()
    assert out.scaling.num_workers == 1 and not out.scaling.use_gpu

    local = resolve_resources(TrainConfig(), cluster_gpus=0, cluster_cpus=2, cluster_nodes=1)
    in_driver = build_ray_configs(cfg, local, storage_path=tmp_path / "runs", name="v1")
    assert in_driver.scaling.num_workers == 0  # Ray Train's local mode
