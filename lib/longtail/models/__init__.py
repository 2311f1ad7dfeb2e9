"""The conversion model, its features, calibration, and saved-model format."""

from __future__ import annotations

from longtail.models.arch import ConversionModel, ModelConfig
from longtail.models.calibration import Calibration, fit_calibration, offsets_from_report
from longtail.models.features import FeatureSpec, encode, fit_feature_spec, hash_ids
from longtail.models.saved import LoadedModel, Prediction, Scorer, load_model, save_model

__all__ = [
    "Calibration",
    "ConversionModel",
    "FeatureSpec",
    "LoadedModel",
    "ModelConfig",
    "Prediction",
    "Scorer",
    "encode",
    "fit_calibration",
    "fit_feature_spec",
    "hash_ids",
    "load_model",
    "offsets_from_report",
    "save_model",
]
