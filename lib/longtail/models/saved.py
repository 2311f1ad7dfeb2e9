"""Saved models: ``model.safetensors`` plus ``manifest.json``; loading never unpickles."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Self

import numpy as np
import polars as pl
import torch
from safetensors.torch import load_file, save_file

from longtail.artifacts import CurrentModel, ModelManifest
from longtail.errors import StageError
from longtail.io import atomic_dir
from longtail.models.arch import ConversionModel, ModelConfig
from longtail.models.calibration import Calibration
from longtail.models.features import FeatureSpec, encode
from longtail.paths import CURRENT_MODEL, MODEL_MANIFEST, MODEL_WEIGHTS

__all__ = [
    "CURRENT",
    "FORMAT_VERSION",
    "FORWARD_ROWS",
    "MANIFEST",
    "WEIGHTS",
    "LoadedModel",
    "Prediction",
    "Scorer",
    "load_model",
    "save_model",
    "to_tensors",
]

FORMAT_VERSION = 1
WEIGHTS = MODEL_WEIGHTS
MANIFEST = MODEL_MANIFEST
CURRENT = CURRENT_MODEL
# Rows in every forward pass of LoadedModel.predict (fixed so scores are batch-invariant).
FORWARD_ROWS = 4_096


def to_tensors(
    arrays: Mapping[str, np.ndarray], *, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Numpy model inputs (from :func:`encode`) to tensors on ``device``."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in arrays.items()}


def state_to_safetensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Return a module's state dict as contiguous CPU tensors, ready for :func:`save_file`."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_model(
    models_dir: Path,
    *,
    version: str,
    model: ConversionModel,
    spec: FeatureSpec,
    calibration: Calibration,
    extra: Mapping[str, Any],
) -> Path:
    """Write ``models_dir/<version>/`` atomically and point ``current.json`` at it.

    Parameters
    ----------
    models_dir
        ``Layout.models``.
    version
        Folder name of this model.
    model, spec, calibration
        What :func:`load_model` needs to rebuild the scorer.
    extra
        More manifest entries (strategy, loss, metrics, data window, ...): fields
        of :class:`longtail.artifacts.ModelManifest`, checked before anything is written.

    Returns
    -------
    Path
        The version folder.
    """
    target = models_dir / version
    with atomic_dir(target) as tmp:
        save_file(state_to_safetensors(model), str(tmp / WEIGHTS), metadata={"format": "pt"})
        manifest = ModelManifest.model_validate(
            {
                **extra,
                "format_version": FORMAT_VERSION,
                "version": version,
                "weights": WEIGHTS,
                "model_config": model.cfg.to_json(),
                "features": spec.to_json(),
                "calibration": calibration.to_json(),
            }
        )
        manifest.write(tmp / MANIFEST)
    CurrentModel(version=version, path=version).write(models_dir / CURRENT)
    return target


class Prediction(NamedTuple):
    """Raw logits and calibrated probabilities, both float64 numpy arrays of shape ``B``."""

    logits: np.ndarray
    probabilities: np.ndarray


@dataclass
class Scorer:
    """A model, its features and its calibration: scores frames of the training-row shape.

    :func:`longtail.train.finish.finish_model` scores with one before the model is
    saved; :class:`LoadedModel` is one read back from disk, with its manifest.
    """

    module: ConversionModel
    spec: FeatureSpec
    calibration: Calibration

    def predict(self, frame: pl.DataFrame, *, batch_size: int = FORWARD_ROWS) -> Prediction:
        """Score rows: raw logits and calibrated probabilities.

        Every forward pass has exactly ``batch_size`` rows (the last one is padded
        with copies of a row and the padding dropped): BLAS and attention kernels
        pick their blocking, and so their summation order, by shape, so a row
        scored in a 123-row frame could differ in the last bit from the same row
        in a 65,536-row frame, and two near-tied items could swap places between
        reruns that batched rows differently. With one shape a row's score
        depends on the row alone.

        Parameters
        ----------
        frame
            Rows with the id, category and dense feature columns of the manifest,
            and the calibration's ``offset_by`` column (the popularity bucket)
            when the sampling correction depends on it; missing, it falls back
            to the overall offset.
        batch_size
            Rows per forward pass (4,096 measured fastest on CPU).

        Raises
        ------
        StageError
            A feature column is missing.
        """
        self.module.eval()
        device = next(self.module.parameters()).device
        chunks = []
        # Encoding is row-wise, so it runs on spans of 16 passes (per pass it cost as
        # much as the forward; the whole of a large frame at once thrashes memory).
        span = batch_size * 16
        with torch.inference_mode():
            for first in range(0, frame.height, span):
                arrays = encode(frame.slice(first, span), self.spec)
                for start in range(0, len(arrays["user"]), batch_size):
                    part = {k: v[start : start + batch_size] for k, v in arrays.items()}
                    n = len(part["user"])
                    if n < batch_size:
                        part = {k: _pad(v, batch_size) for k, v in part.items()}
                    out = self.module(to_tensors(part, device=device))
                    chunks.append(out[:n].float().cpu().numpy().astype(np.float64))
        logits = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float64)
        by = self.calibration.offset_by
        groups = frame.get_column(by) if by is not None and by in frame.columns else None
        return Prediction(logits, self.calibration.apply(logits, groups))

    def to(self, device: torch.device | str) -> Self:
        """Move the module to ``device`` (e.g. "cuda") and return self."""
        self.module.to(device)
        return self


@dataclass
class LoadedModel(Scorer):
    """A saved model ready to score: the :class:`Scorer`, its manifest and its folder.

    Build it once per process (e.g. in a Ray ``map_batches`` callable class's
    ``__init__``) and call :meth:`predict` under ``torch.inference_mode()``.
    """

    manifest: ModelManifest
    path: Path


def _pad(values: np.ndarray, rows: int) -> np.ndarray:
    """``values`` followed by copies of its first row, ``rows`` rows in all."""
    return np.concatenate([values, np.repeat(values[:1], rows - len(values), axis=0)])


def _resolve(path: Path) -> Path:
    if (path / MANIFEST).is_file():
        return path
    pointer = path / CURRENT
    if pointer.is_file():
        return path / CurrentModel.load(pointer).path
    msg = f"no saved model at {path} (neither {MANIFEST} nor {CURRENT})"
    raise StageError(msg)


def load_model(path: str | Path, *, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a saved model from its version folder, or the current one from ``models/``.

    Only JSON and safetensors are read; nothing is unpickled.

    Raises
    ------
    StageError
        No model there, an unknown format version, or weights that do not match.
    """
    folder = _resolve(Path(path))
    # Checked before the manifest's schema: another format fails with this message.
    raw = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if raw.get("format_version") != FORMAT_VERSION:
        msg = (
            f"model {folder}: format_version must be {FORMAT_VERSION}. "
            f"Got {raw.get('format_version')!r} instead."
        )
        raise StageError(msg)
    info = ModelManifest.load(folder / MANIFEST)
    module = ConversionModel(ModelConfig.from_json(info.architecture))
    state = load_file(str(folder / info.weights))
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        msg = f"model {folder}: weights do not match the manifest's model_config"
        raise StageError(msg) from exc
    module.to(device).eval()
    return LoadedModel(
        module=module,
        spec=FeatureSpec.from_json(info.features),
        calibration=Calibration.from_json(info.calibration),
        manifest=info,
        path=folder,
    )
