"""Great Expectations suites, built as code from the config and the columns of each table.

Suites are functions of (column schema, run bounds, config) rather than frozen
JSON: feature tables grow new ``user_*``/``item_*`` columns, and bounds such as
the run window, the previous row count and the label-rate limits change every
run. Each expectation carries ``meta = {"check": NAME, "description": TEXT}``
with ``NAME`` one of :data:`CHECKS`, and a GE ``severity`` that is ``critical``
unless the config's ``validation.warn_only`` names the check.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import great_expectations as gx
import polars as pl
from great_expectations.expectations.core.expect_column_max_to_be_between import (
    ExpectColumnMaxToBeBetween,
)
from great_expectations.expectations.core.expect_column_mean_to_be_between import (
    ExpectColumnMeanToBeBetween,
)
from great_expectations.expectations.core.expect_column_values_to_be_between import (
    ExpectColumnValuesToBeBetween,
)
from great_expectations.expectations.core.expect_column_values_to_be_in_set import (
    ExpectColumnValuesToBeInSet,
)
from great_expectations.expectations.core.expect_column_values_to_be_in_type_list import (
    ExpectColumnValuesToBeInTypeList,
)
from great_expectations.expectations.core.expect_column_values_to_be_of_type import (
    ExpectColumnValuesToBeOfType,
)
from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
    ExpectColumnValuesToNotBeNull,
)
from great_expectations.expectations.core.expect_compound_columns_to_be_unique import (
    ExpectCompoundColumnsToBeUnique,
)
from great_expectations.expectations.core.expect_table_columns_to_match_set import (
    ExpectTableColumnsToMatchSet,
)
from great_expectations.expectations.core.expect_table_row_count_to_be_between import (
    ExpectTableRowCountToBeBetween,
)
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.metadata_types import FailureSeverity

from longtail import schema as S
from longtail.config import ValidationConfig
from longtail.errors import ConfigError

__all__ = [
    "CHECKS",
    "FEATURE_TIMESTAMP",
    "METRICS_SUITE",
    "RunBounds",
    "check_warn_only",
    "events_suite",
    "feature_suite",
    "ge_type_name",
    "items_suite",
    "metrics_suite",
    "severity_for",
    "training_suite",
]

FEATURE_TIMESTAMP: Final = "event_timestamp"
METRICS_SUITE: Final = "imbalance"

# Check name -> the words printed for a failure. A check is a family of expectations.
CHECKS: Final[dict[str, str]] = {
    "table_exists": "table missing",
    "columns": "expected columns missing",
    "types": "column type wrong",
    "keys_not_null": "id or timestamp is null",
    "event_types": "event type outside the allowed set",
    "time_window": "timestamp outside the run window",
    "not_future": "timestamp in the future",
    "price_non_negative": "price below 0",
    "feature_range": "feature value out of range",
    "popularity_bucket": "popularity bucket outside head/torso/tail",
    "unique_rows": "duplicate rows for one key",
    "freshness": "newest timestamp is not the run date",
    "label_values": "label outside {0, 1}",
    "split_values": "split column does not match the file",
    "label_rate": "label rate out of bounds",
    "row_count": "row count out of bounds (tolerance against the previous run)",
    "label_rate_drift": "label rate drift against the previous run out of bounds",
    "gini_drift": "item popularity Gini drift against the previous run out of bounds",
}

_NUMERIC_TYPES: Final = (
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "bool",
    # Integers and booleans reach GE as pandas nullable dtypes (see engine.to_pandas).
    "Int8Dtype",
    "Int16Dtype",
    "Int32Dtype",
    "Int64Dtype",
    "UInt8Dtype",
    "UInt16Dtype",
    "UInt32Dtype",
    "UInt64Dtype",
    "BooleanDtype",
)
_COUNT_MARKERS: Final = ("_views", "_purchases", "_carts", "_events", "_count", "_age_days")


@dataclass(frozen=True)
class RunBounds:
    """The bounds of one run that suites need: the window and the previous run.

    Parameters
    ----------
    date
        The run date.
    window_start, window_end
        Timestamps must lie in ``[window_start, window_end]``; ``window_end`` is
        the end of the run date (midnight after it).
    not_after
        Nothing may be newer than this (the clock, or ``ingest.now``, plus the
        ingest tolerance).
    previous_rows
        Row count per suite name in the previous passing run.
    """

    date: dt.date
    window_start: dt.datetime
    window_end: dt.datetime
    not_after: dt.datetime
    previous_rows: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def for_date(
        cls,
        date: dt.date,
        *,
        window_days: int,
        now: dt.datetime,
        previous_rows: Mapping[str, int] | None = None,
    ) -> RunBounds:
        """Bounds for a run date: a window of ``window_days`` ending at the end of ``date``."""
        end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return cls(
            date=date,
            window_start=end - dt.timedelta(days=window_days + 1),
            window_end=end,
            not_after=now if now.tzinfo else now.replace(tzinfo=dt.UTC),
            previous_rows=dict(previous_rows or {}),
        )

    @property
    def day_start(self) -> dt.datetime:
        """Midnight at the start of the run date (UTC)."""
        return self.window_end - dt.timedelta(days=1)


def check_warn_only(cfg: ValidationConfig, *, suites: list[str]) -> None:
    """Reject ``warn_only`` entries that name no check, so a typo never weakens a gate.

    Raises
    ------
    ConfigError
        An entry is neither a check name nor ``suite.check`` for a known suite.
    """
    for entry in cfg.warn_only:
        suite, _, check = entry.rpartition(".")
        if check not in CHECKS or (suite and suite not in suites):
            msg = (
                f"validation.warn_only: {entry!r} names no check; use one of {sorted(CHECKS)}, "
                f"optionally prefixed by a suite in {sorted(suites)}."
            )
            raise ConfigError(msg)


def severity_for(cfg: ValidationConfig, *, suite: str, check: str) -> FailureSeverity:
    """Return WARNING when ``warn_only`` names the check (or suite.check), else CRITICAL."""
    if check in cfg.warn_only or f"{suite}.{check}" in cfg.warn_only:
        return FailureSeverity.WARNING
    return FailureSeverity.CRITICAL


def ge_type_name(dtype: pl.DataType) -> str:
    """The GE pandas type name of a Polars dtype after :func:`to_pandas` in the runner.

    Integers become pandas nullable integers (GE reports ``int64``), tz-aware
    datetimes ``Timestamp``, naive datetimes ``datetime64``, strings ``object``.
    """
    if dtype == pl.Datetime:
        return "Timestamp" if getattr(dtype, "time_zone", None) else "datetime64"
    if dtype == pl.Boolean:
        return "bool"
    if dtype in (pl.String, pl.Categorical, pl.Enum):
        return "object"
    if dtype.is_numeric():
        return str(dtype).lower()
    return str(dtype)


class _Builder:
    """Adds expectations with their check name and severity to one suite."""

    def __init__(self, name: str, cfg: ValidationConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.expectations: list[Expectation] = []

    @property
    def suite(self) -> gx.ExpectationSuite:
        # Built in one go: adding to a suite one by one needs an active GE context.
        return gx.ExpectationSuite(name=self.name, expectations=list(self.expectations))

    def add(self, check: str, expectation_cls: type[Expectation], **kwargs: Any) -> None:
        severity = severity_for(self.cfg, suite=self.name, check=check)
        meta = {"check": check, "description": CHECKS[check]}
        self.expectations.append(expectation_cls(meta=meta, severity=severity, **kwargs))

    def columns(self, expected: list[str]) -> None:
        self.add("columns", ExpectTableColumnsToMatchSet, column_set=expected, exact_match=False)

    def types(self, present: Mapping[str, pl.DataType], expected: Mapping[str, str]) -> None:
        for name, type_name in expected.items():
            if name in present:
                self.add("types", ExpectColumnValuesToBeOfType, column=name, type_=type_name)

    def numeric(self, names: list[str]) -> None:
        for name in names:
            self.add(
                "types", ExpectColumnValuesToBeInTypeList, column=name, type_list=_NUMERIC_TYPES
            )

    def not_null(self, names: list[str], present: Mapping[str, pl.DataType]) -> None:
        for name in names:
            if name in present:
                self.add("keys_not_null", ExpectColumnValuesToNotBeNull, column=name)

    def row_count(self, previous: int | None) -> None:
        tol = self.cfg.row_count_tolerance
        if previous is None:
            low, high = 1, None
        else:
            low = max(1, math.floor(previous * (1 - tol)))
            high = math.ceil(previous * (1 + tol))
        self.add("row_count", ExpectTableRowCountToBeBetween, min_value=low, max_value=high)

    def time_window(self, column: str, bounds: RunBounds, *, upper: bool) -> None:
        self.add(
            "time_window",
            ExpectColumnValuesToBeBetween,
            column=column,
            min_value=bounds.window_start,
            max_value=bounds.window_end if upper else None,
        )
        self.add(
            "not_future",
            ExpectColumnValuesToBeBetween,
            column=column,
            max_value=bounds.not_after,
        )

    def non_negative(self, check: str, names: list[str]) -> None:
        for name in names:
            self.add(check, ExpectColumnValuesToBeBetween, column=name, min_value=0)


def _feature_checks(b: _Builder, present: Mapping[str, pl.DataType], features: list[str]) -> None:
    b.numeric(features)
    prices = [c for c in features if c.endswith("_price")]
    b.non_negative("price_non_negative", prices)
    for name in features:
        if name.endswith("_rate"):
            b.add(
                "feature_range",
                ExpectColumnValuesToBeBetween,
                column=name,
                min_value=0,
                max_value=1,
            )
        elif any(marker in name for marker in _COUNT_MARKERS):
            b.add("feature_range", ExpectColumnValuesToBeBetween, column=name, min_value=0)
    if S.POPULARITY_BUCKET in present:
        b.add(
            "popularity_bucket",
            ExpectColumnValuesToBeInSet,
            column=S.POPULARITY_BUCKET,
            value_set=list(S.BUCKETS),
        )


def _numeric_features(present: Mapping[str, pl.DataType], prefix: str) -> list[str]:
    return [
        name
        for name, dtype in present.items()
        if name.startswith(prefix)
        and name not in S.CATEGORICAL_COLUMNS
        and (dtype.is_numeric() or dtype == pl.Boolean)
    ]


def events_suite(
    present: Mapping[str, pl.DataType], *, bounds: RunBounds, cfg: ValidationConfig
) -> gx.ExpectationSuite:
    """Suite for canonical events: schema, keys, event types, timestamps, row count.

    Timestamps must not be older than the window nor in the future; the canonical
    table keeps every day, so events after a backfill date are allowed. The
    newest event must fall on or after the run date (freshness).
    """
    b = _Builder("events", cfg)
    b.columns(list(S.EVENTS))
    b.types(present, {n: ge_type_name(t) for n, t in S.EVENTS.items()})
    b.not_null([n for n in S.EVENTS if n not in S.NULLABLE["events"]], present)
    if S.EVENT_TYPE in present:
        b.add(
            "event_types",
            ExpectColumnValuesToBeInSet,
            column=S.EVENT_TYPE,
            value_set=list(S.EVENT_TYPES),
        )
    if S.EVENT_TIME in present:
        b.time_window(S.EVENT_TIME, bounds, upper=False)
        b.add(
            "freshness",
            ExpectColumnMaxToBeBetween,
            column=S.EVENT_TIME,
            min_value=bounds.day_start,
        )
    b.row_count(bounds.previous_rows.get("events"))
    return b.suite


def items_suite(
    present: Mapping[str, pl.DataType], *, bounds: RunBounds, cfg: ValidationConfig
) -> gx.ExpectationSuite:
    """Suite for canonical items: schema, ids, price >= 0, one row per (item, valid_from)."""
    b = _Builder("items", cfg)
    b.columns(list(S.ITEMS))
    b.types(present, {n: ge_type_name(t) for n, t in S.ITEMS.items()})
    b.not_null([n for n in S.ITEMS if n not in S.NULLABLE["items"]], present)
    b.non_negative("price_non_negative", [c for c in (S.PRICE,) if c in present])
    if S.ITEM_ID in present and S.VALID_FROM in present:
        b.add(
            "unique_rows",
            ExpectCompoundColumnsToBeUnique,
            column_list=[S.ITEM_ID, S.VALID_FROM],
        )
    if S.VALID_FROM in present:
        b.add(
            "not_future",
            ExpectColumnValuesToBeBetween,
            column=S.VALID_FROM,
            max_value=bounds.not_after,
        )
    b.row_count(bounds.previous_rows.get("items"))
    return b.suite


def feature_suite(
    name: str,
    present: Mapping[str, pl.DataType],
    *,
    entity: str,
    bounds: RunBounds,
    cfg: ValidationConfig,
) -> gx.ExpectationSuite:
    """Suite for a feature table: one row per (entity, snapshot), fresh, typed features.

    Parameters
    ----------
    name
        Suite name (``user_features`` or ``item_features``).
    present
        The table's column schema; every numeric column prefixed like the entity
        (``user_`` for ``user_id``) gets a type check, ``*_rate`` columns must be in
        [0, 1], counts and ``*_price`` >= 0.
    entity
        The key column (``user_id`` or ``item_id``).
    """
    prefix = entity.removesuffix("id")
    b = _Builder(name, cfg)
    b.columns([entity, FEATURE_TIMESTAMP])
    b.types(present, {entity: "int64", FEATURE_TIMESTAMP: "Timestamp"})
    b.not_null([entity, FEATURE_TIMESTAMP], present)
    if entity in present and FEATURE_TIMESTAMP in present:
        b.add(
            "unique_rows",
            ExpectCompoundColumnsToBeUnique,
            column_list=[entity, FEATURE_TIMESTAMP],
        )
    if FEATURE_TIMESTAMP in present:
        b.time_window(FEATURE_TIMESTAMP, bounds, upper=True)
        lag = dt.timedelta(days=cfg.max_snapshot_lag_days)
        b.add(
            "freshness",
            ExpectColumnMaxToBeBetween,
            column=FEATURE_TIMESTAMP,
            min_value=bounds.day_start - lag,
            max_value=bounds.window_end,
        )
    features = [c for c in _numeric_features(present, prefix) if c != entity]
    _feature_checks(b, present, features)
    if S.ITEM_CATEGORY in present and prefix == "item_":
        b.types(present, {S.ITEM_CATEGORY: "int64"})
    b.row_count(bounds.previous_rows.get(name))
    return b.suite


def training_suite(
    split: str,
    present: Mapping[str, pl.DataType],
    *,
    bounds: RunBounds,
    cfg: ValidationConfig,
) -> gx.ExpectationSuite:
    """Suite for one training split: keys, label in {0, 1}, label rate bounds, features."""
    name = f"training_{split}"
    b = _Builder(name, cfg)
    required = [*S.TRAINING_KEYS, S.LABEL, S.SPLIT, S.POPULARITY_BUCKET, S.ITEM_CATEGORY]
    b.columns(required)
    b.types(
        present,
        {
            S.USER_ID: "int64",
            S.ITEM_ID: "int64",
            S.EVENT_TIME: "Timestamp",
            S.SPLIT: "object",
            S.POPULARITY_BUCKET: "object",
            S.ITEM_CATEGORY: "int64",
        },
    )
    b.not_null([*S.TRAINING_KEYS, S.LABEL], present)
    if S.LABEL in present:
        b.add("label_values", ExpectColumnValuesToBeInSet, column=S.LABEL, value_set=[0, 1])
        b.add(
            "label_rate",
            ExpectColumnMeanToBeBetween,
            column=S.LABEL,
            min_value=cfg.training_label_rate_min,
            max_value=cfg.training_label_rate_max,
        )
    if S.SPLIT in present:
        b.add("split_values", ExpectColumnValuesToBeInSet, column=S.SPLIT, value_set=[split])
    if all(k in present for k in S.TRAINING_KEYS):
        b.add("unique_rows", ExpectCompoundColumnsToBeUnique, column_list=list(S.TRAINING_KEYS))
    if S.EVENT_TIME in present:
        b.time_window(S.EVENT_TIME, bounds, upper=True)
    features = [
        c for c in _numeric_features(present, "user_") + _numeric_features(present, "item_")
    ]
    _feature_checks(b, present, features)
    b.row_count(bounds.previous_rows.get(name))
    return b.suite


def metrics_suite(
    metrics: Mapping[str, float | None], *, cfg: ValidationConfig
) -> gx.ExpectationSuite:
    """Suite over a one-row frame of derived metrics: label rates, drift of label rate and Gini.

    Parameters
    ----------
    metrics
        Column name -> value; recognised names are ``*_label_rate`` (bounded by
        ``label_rate_min``/``max``), ``*_label_rate_drift`` (relative, at most
        ``max_label_rate_drift``) and ``*_gini_drift`` (absolute, at most
        ``max_gini_drift``). Other columns are carried for the record.
    """
    b = _Builder(METRICS_SUITE, cfg)
    for name in metrics:
        if name.endswith("_label_rate"):
            training = name.startswith("training")
            b.add(
                "label_rate",
                ExpectColumnValuesToBeBetween,
                column=name,
                min_value=cfg.training_label_rate_min if training else cfg.label_rate_min,
                max_value=cfg.training_label_rate_max if training else cfg.label_rate_max,
            )
        elif name.endswith("_label_rate_drift"):
            b.add(
                "label_rate_drift",
                ExpectColumnValuesToBeBetween,
                column=name,
                max_value=cfg.max_label_rate_drift,
            )
        elif name.endswith("_gini_drift"):
            b.add(
                "gini_drift",
                ExpectColumnValuesToBeBetween,
                column=name,
                max_value=cfg.max_gini_drift,
            )
    return b.suite
