"""Ray Train training of the conversion model: worker loop, driver, Ray configs."""

from __future__ import annotations

from longtail.train.driver import TrainInputs, TrainResult, evaluate, fit, resolve_inputs
from longtail.train.ray_configs import (
    RayTrainConfigs,
    Resources,
    build_ray_configs,
    resolve_resources,
)
from longtail.train.worker import WorkerConfig, build_optimizers, train_loop_per_worker

__all__ = [
    "RayTrainConfigs",
    "Resources",
    "TrainInputs",
    "TrainResult",
    "WorkerConfig",
    "build_optimizers",
    "build_ray_configs",
    "evaluate",
    "fit",
    "resolve_inputs",
    "resolve_resources",
    "train_loop_per_worker",
]
