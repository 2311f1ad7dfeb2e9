"""Ray Train training of the conversion model: worker loop, driver, Ray configs, finishing.

What other stages use (the tune trial, the daily chain, the backtest) is exported here.
"""

from __future__ import annotations

from longtail.train.driver import TrainInputs, TrainResult, fit, resolve_inputs
from longtail.train.finish import (
    Calibrator,
    ClassCounts,
    Finished,
    ModelRun,
    build_model_config,
    evaluate,
    finish_model,
    load_best_weights,
)
from longtail.train.optim import Optimizer
from longtail.train.ray_configs import (
    RayTrainConfigs,
    Resources,
    build_ray_configs,
    resolve_resources,
)
from longtail.train.worker import (
    Batches,
    EpochEnd,
    WorkerConfig,
    build_optimizers,
    run_epochs,
    train_loop_per_worker,
)

__all__ = [
    "Batches",
    "Calibrator",
    "ClassCounts",
    "EpochEnd",
    "Finished",
    "ModelRun",
    "Optimizer",
    "RayTrainConfigs",
    "Resources",
    "TrainInputs",
    "TrainResult",
    "WorkerConfig",
    "build_model_config",
    "build_optimizers",
    "build_ray_configs",
    "evaluate",
    "finish_model",
    "fit",
    "load_best_weights",
    "resolve_inputs",
    "resolve_resources",
    "run_epochs",
    "train_loop_per_worker",
]
