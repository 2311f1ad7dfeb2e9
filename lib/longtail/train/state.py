"""Training state on disk as safetensors + JSON: model, best model, optimizers, progress.

Ray checkpoints are folders written by :func:`write_state` and read by
:func:`read_state`; nothing in them is a pickle.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from longtail.paths import Checkpoint
from longtail.train.optim import Optimizer

__all__ = ["Progress", "read_best_weights", "read_state", "write_state"]


@dataclass
class Progress:
    """Where training stands: epochs done, the early-stopping record, and history."""

    epochs_done: int = 0
    best_metric: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    restarts: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def record(self, metric: float, *, epoch: int, patience: int) -> tuple[bool, bool]:
        """Record an epoch's validation metric (higher is better).

        Returns
        -------
        tuple of bool
            ``(improved, stop)``: whether this epoch is the new best, and whether
            ``patience`` epochs in a row have now passed without improvement. A NaN
            metric never improves, except as the first value.
        """
        improved = self.best_metric is None or (
            not math.isnan(metric) and (math.isnan(self.best_metric) or metric > self.best_metric)
        )
        if improved:
            self.best_metric, self.best_epoch, self.bad_epochs = metric, epoch, 0
        else:
            self.bad_epochs += 1
        self.epochs_done = epoch
        return improved, self.bad_epochs >= patience


def _flatten_optimizers(
    optimizers: list[Optimizer],
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    tensors: dict[str, torch.Tensor] = {}
    meta: list[dict[str, Any]] = []
    for k, opt in enumerate(optimizers):
        sd = opt.state_dict()
        scalars: dict[str, dict[str, float]] = {}
        for idx, entry in sd["state"].items():
            for key, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"opt{k}.{idx}.{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(idx), {})[key] = float(value)
        meta.append({"param_groups": sd["param_groups"], "scalars": scalars})
    return tensors, meta


def _unflatten_optimizers(
    optimizers: list[Optimizer],
    tensors: dict[str, torch.Tensor],
    meta: list[dict[str, Any]],
) -> None:
    for k, opt in enumerate(optimizers):
        state: dict[int, dict[str, Any]] = {}
        prefix = f"opt{k}."
        for name, value in tensors.items():
            if name.startswith(prefix):
                idx, key = name[len(prefix) :].split(".", 1)
                state.setdefault(int(idx), {})[key] = value
        for idx, scalars in meta[k]["scalars"].items():
            for key, value in scalars.items():
                state.setdefault(int(idx), {})[key] = int(value) if key == "step" else value
        groups = meta[k]["param_groups"]
        for group in groups:
            if "betas" in group:
                group["betas"] = tuple(group["betas"])
        opt.load_state_dict({"state": state, "param_groups": groups})


def write_state(
    folder: Path,
    *,
    model: torch.nn.Module,
    best: dict[str, torch.Tensor],
    optimizers: list[Optimizer],
    progress: Progress,
) -> None:
    """Write the resumable state of a run into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = Checkpoint(folder)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        str(files.model),
    )
    save_file(best, str(files.best))
    tensors, meta = _flatten_optimizers(optimizers)
    save_file(tensors, str(files.optimizer))
    files.state.write_text(
        json.dumps({"progress": asdict(progress), "optimizers": meta}, indent=2), encoding="utf-8"
    )


def read_state(
    folder: Path, *, model: torch.nn.Module, optimizers: list[Optimizer]
) -> tuple[Progress, dict[str, torch.Tensor]]:
    """Restore ``model`` and ``optimizers`` in place; return the progress and best weights."""
    files = Checkpoint(folder)
    model.load_state_dict(load_file(str(files.model)))
    raw = json.loads(files.state.read_text(encoding="utf-8"))
    _unflatten_optimizers(optimizers, load_file(str(files.optimizer)), raw["optimizers"])
    return Progress(**raw["progress"]), load_file(str(files.best))


def read_best_weights(folder: Path) -> tuple[Progress, dict[str, torch.Tensor]]:
    """Return the progress and the best weights of a checkpoint folder (driver side)."""
    files = Checkpoint(folder)
    raw = json.loads(files.state.read_text(encoding="utf-8"))
    return Progress(**raw["progress"]), load_file(str(files.best))
