"""Labelled training rows with point-in-time features from the Feast feature service."""

from __future__ import annotations

from longtail.training_set.build import (
    SplitStats,
    TrainingSetSummary,
    build_training_set,
    features_for,
)
from longtail.training_set.embargo import EmbargoStats, apply_embargo
from longtail.training_set.labels import label_views
from longtail.training_set.split import SplitPlan, assign_splits, plan_splits, split_boundaries

__all__ = [
    "EmbargoStats",
    "SplitPlan",
    "SplitStats",
    "TrainingSetSummary",
    "apply_embargo",
    "assign_splits",
    "build_training_set",
    "features_for",
    "label_views",
    "plan_splits",
    "split_boundaries",
]
