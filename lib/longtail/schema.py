"""Canonical tables: column names and dtypes, defined once.

Every stage refers to columns through these constants, and :func:`conform`
checks and orders a frame against a schema with an error that names the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal, Protocol, get_args

import polars as pl

from longtail.errors import StageError

__all__ = [
    "CATEGORIES",
    "EVENTS",
    "EVENT_TYPES",
    "ITEMS",
    "LOSSES",
    "OBJECTIVES",
    "QUARANTINE",
    "STRATEGY_NAMES",
    "TIME",
    "FeatureWindows",
    "LossName",
    "Objective",
    "StrategyName",
    "conform",
    "empty",
    "item_feature_schema",
    "user_feature_schema",
]

TIME: Final = pl.Datetime("us", "UTC")
EVENT_TYPES: Final = ("view", "cart", "purchase")

# Column names, by table.
EVENT_TIME: Final = "event_time"
USER_ID: Final = "user_id"
ITEM_ID: Final = "item_id"
EVENT_TYPE: Final = "event_type"
TRANSACTION_ID: Final = "transaction_id"
CATEGORY_ID: Final = "category_id"
PARENT_ID: Final = "parent_id"
VALID_FROM: Final = "valid_from"
PRICE: Final = "price"
AVAILABLE: Final = "available"
TITLE: Final = "title"

EVENTS: Final[dict[str, pl.DataType]] = {
    EVENT_TIME: TIME,
    USER_ID: pl.Int64(),
    ITEM_ID: pl.Int64(),
    EVENT_TYPE: pl.String(),
    TRANSACTION_ID: pl.String(),
}
# Time-versioned item properties: a row holds from valid_from until the next row of the item.
ITEMS: Final[dict[str, pl.DataType]] = {
    ITEM_ID: pl.Int64(),
    VALID_FROM: TIME,
    CATEGORY_ID: pl.Int64(),
    PRICE: pl.Float64(),
    AVAILABLE: pl.Boolean(),
    TITLE: pl.String(),
}
CATEGORIES: Final[dict[str, pl.DataType]] = {
    CATEGORY_ID: pl.Int64(),
    PARENT_ID: pl.Int64(),
}
# A rejected input row: where it came from, why, and its original values as JSON.
QUARANTINE: Final[dict[str, pl.DataType]] = {
    "table": pl.String(),
    "source_file": pl.String(),
    "row_number": pl.Int64(),
    "reason": pl.String(),
    "raw": pl.String(),
}
NULLABLE: Final[dict[str, frozenset[str]]] = {
    "events": frozenset({TRANSACTION_ID}),
    "items": frozenset({CATEGORY_ID, PRICE, AVAILABLE, TITLE}),
    "categories": frozenset({PARENT_ID}),
}


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Return an empty frame with the given schema."""
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType], *, table: str) -> pl.DataFrame:
    """Select, order and check the columns of ``frame`` against ``schema``.

    Parameters
    ----------
    frame
        The frame to check. Extra columns are dropped.
    schema
        Column name -> dtype.
    table
        Table name used in error messages.

    Returns
    -------
    pl.DataFrame
        The frame with exactly the schema's columns, in order.

    Raises
    ------
    StageError
        A column is missing or has another dtype.
    """
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        msg = f"table {table!r} lacks column(s) {missing}; has {frame.columns}"
        raise StageError(msg)
    for name, dtype in schema.items():
        got = frame.schema[name]
        if got != dtype and got != pl.Null:
            msg = f"table {table!r} column {name!r} has dtype {got}, expected {dtype}"
            raise StageError(msg)
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


# --------------------------------------------------------------------------- training rows
# One row per (user, item, view time): the label and the point-in-time features.
# Feature columns are prefixed ``user_`` / ``item_`` (Feast views) or ``pair_`` (computed
# with the candidates, see ``candidates.PAIR_FEATURES``); every numeric one that is not
# a key, label or categorical is a dense model input.
LABEL: Final = "label"
# When the event that made a row positive happened (null for negatives); used by the
# embargo to cut label windows at a split boundary, never written to a split.
LABEL_TIME: Final = "label_time"
SPLIT: Final = "split"
SPLITS: Final = ("train", "validation", "test")
POPULARITY_BUCKET: Final = "item_popularity_bucket"
BUCKETS: Final = ("head", "torso", "tail")
ITEM_CATEGORY: Final = "item_category_id"
TRAINING_KEYS: Final = (USER_ID, ITEM_ID, EVENT_TIME)
# Columns that are never interpolated or normalized: ids, categoricals, label, split.
CATEGORICAL_COLUMNS: Final = frozenset(
    {USER_ID, ITEM_ID, ITEM_CATEGORY, POPULARITY_BUCKET, LABEL, SPLIT, EVENT_TIME}
)


def dense_feature_columns(frame: pl.DataFrame) -> list[str]:
    """Return the dense (numeric, non-key, non-categorical) feature columns, in frame order."""
    return [
        name
        for name, dtype in frame.schema.items()
        if name not in CATEGORICAL_COLUMNS
        and name.startswith(("user_", "item_", "pair_"))
        and (dtype.is_numeric() or dtype == pl.Boolean)
    ]


# --------------------------------------------------------------------------- model outputs
# Columns of scored rows and of the served lists (``recommendations/date=D/``).
SCORE: Final = "score"  # the model's logit
PROBABILITY: Final = "probability"  # calibrated: prior-corrected, then Platt/temperature/isotonic
RAW_PROBABILITY: Final = "raw_probability"  # sigmoid of the logit, before calibration
RANK: Final = "rank"  # 1 = first in the user's list
MODEL_VERSION: Final = "model_version"
STRATEGY: Final = "strategy"
FEATURE_SERVICE: Final = "feature_service"
GENERATED_AT: Final = "generated_at"

# --------------------------------------------------------------------------- shared names
# Checked when the config loads (pydantic validates the Literals), so a misspelt name
# fails before ingest and the gates run, not at the step that uses it.
#: Resampling strategies (``longtail.resampling.STRATEGIES`` holds their samplers; a
#: test keeps the two in step).
StrategyName = Literal[
    "none",
    "random_under",
    "random_over",
    "smote",
    "borderline_smote",
    "adasyn",
    "tomek",
    "cluster_centroids",
    "smote_tomek",
]
STRATEGY_NAMES: Final[tuple[str, ...]] = get_args(StrategyName)
#: Training losses (``longtail.losses.make_loss``).
LossName = Literal["bce", "weighted_bce", "focal", "class_balanced"]
LOSSES: Final[tuple[str, ...]] = get_args(LossName)
#: What tune selects on: pointwise PR-AUC, or the backtest's list metrics on candidate rows.
Objective = Literal["pr_auc", "recall_at_k", "ndcg_at_k", "tail_recall_at_k", "tail_pr_auc"]
OBJECTIVES: Final[tuple[str, ...]] = get_args(Objective)


# --------------------------------------------------------------------------- feature snapshots
# Daily snapshots, the Parquet sources of the Feast feature views. A snapshot at
# ``event_timestamp`` = D 00:00 UTC is computed from events strictly before D.
SNAPSHOT_TIME: Final = "event_timestamp"
USER_RECENT_ITEMS: Final = "user_recent_items"
USER_CONVERSION_RATE: Final = "user_conversion_rate"
USER_DAYS_SINCE_LAST_PURCHASE: Final = "user_days_since_last_purchase"
USER_DISTINCT_CATEGORIES: Final = "user_distinct_categories"
USER_TOP_CATEGORY_SHARE: Final = "user_top_category_share"
ITEM_CONVERSION_RATE: Final = "item_conversion_rate"
ITEM_PRICE: Final = "item_price"
ITEM_AVAILABLE: Final = "item_available"
ITEM_POPULARITY_RANK: Final = "item_popularity_rank"
ITEM_DAYS_SINCE_FIRST_SEEN: Final = "item_days_since_first_seen"


def window_column(entity: str, event: str, days: int) -> str:
    """Name of a windowed count, e.g. ``user_views_7d``."""
    return f"{entity}_{event}_{days}d"


class FeatureWindows(Protocol):
    """What the snapshot schemas depend on (``longtail.config.FeaturesConfig`` has it)."""

    @property
    def user_windows_days(self) -> Sequence[int]:
        """Windows (days) of the user activity counts."""
        ...

    @property
    def item_windows_days(self) -> Sequence[int]:
        """Windows (days) of the item popularity counts."""
        ...

    @property
    def recent_items(self) -> int:
        """Length of ``user_recent_items``; 0 leaves the column out."""
        ...


def user_feature_schema(cfg: FeatureWindows) -> dict[str, pl.DataType]:
    """Column -> dtype of the user snapshot table, keys and timestamp first."""
    out: dict[str, pl.DataType] = {USER_ID: pl.Int64(), SNAPSHOT_TIME: TIME}
    for w in cfg.user_windows_days:
        for ev in ("views", "carts", "purchases"):
            out[window_column("user", ev, w)] = pl.Int64()
    out[USER_CONVERSION_RATE] = pl.Float64()
    out[USER_DAYS_SINCE_LAST_PURCHASE] = pl.Float64()
    out[USER_DISTINCT_CATEGORIES] = pl.Int64()
    out[USER_TOP_CATEGORY_SHARE] = pl.Float64()
    if cfg.recent_items:
        out[USER_RECENT_ITEMS] = pl.List(pl.Int64())
    return out


def item_feature_schema(cfg: FeatureWindows) -> dict[str, pl.DataType]:
    """Column -> dtype of the item snapshot table, keys and timestamp first."""
    out: dict[str, pl.DataType] = {ITEM_ID: pl.Int64(), SNAPSHOT_TIME: TIME}
    for w in cfg.item_windows_days:
        for ev in ("views", "purchases"):
            out[window_column("item", ev, w)] = pl.Int64()
    out[ITEM_CONVERSION_RATE] = pl.Float64()
    out[ITEM_PRICE] = pl.Float64()
    out[ITEM_CATEGORY] = pl.Int64()
    out[ITEM_AVAILABLE] = pl.Boolean()
    out[ITEM_POPULARITY_RANK] = pl.Int64()
    out[POPULARITY_BUCKET] = pl.String()
    out[ITEM_DAYS_SINCE_FIRST_SEEN] = pl.Float64()
    return out
