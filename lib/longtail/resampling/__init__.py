"""Imbalance strategies for the train split: imbalanced-learn samplers per group on Ray Data."""

from __future__ import annotations

from longtail.resampling.pipeline import (
    resample_frame,
    resample_train_split,
    resampled_dir,
    train_split_path,
)
from longtail.resampling.report import ClassCounts, SamplingReport
from longtail.resampling.strategies import STRATEGIES, FrameSampler, check_params

__all__ = [
    "STRATEGIES",
    "ClassCounts",
    "FrameSampler",
    "SamplingReport",
    "check_params",
    "resample_frame",
    "resample_train_split",
    "resampled_dir",
    "train_split_path",
]
