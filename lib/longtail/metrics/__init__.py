"""Pure metric functions over Polars frames, with column names passed by keyword."""

from __future__ import annotations

from longtail.metrics.classification import (
    brier,
    brier_skill,
    classification_report,
    ece,
    ece_by_scope,
    log_loss,
    log_loss_skill,
    pr_auc,
    ranked_aucs,
    relative_ece,
    reliability_bins,
    roc_auc,
)
from longtail.metrics.ranking import (
    catalog_coverage,
    map_at_k,
    ndcg_at_k,
    ranking_report,
    recall_at_k,
    tail_share,
    top_k,
)

__all__ = [
    "brier",
    "brier_skill",
    "catalog_coverage",
    "classification_report",
    "ece",
    "ece_by_scope",
    "log_loss",
    "log_loss_skill",
    "map_at_k",
    "ndcg_at_k",
    "pr_auc",
    "ranked_aucs",
    "ranking_report",
    "recall_at_k",
    "relative_ece",
    "reliability_bins",
    "roc_auc",
    "tail_share",
    "top_k",
]
