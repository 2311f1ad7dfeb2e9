from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import Config
from longtail.validation import format_result, run_gate
from longtail.validation.sampling import detection_rate
from tests.validation.validation_data import DAY, Tables

pytestmark = pytest.mark.unit
Build = Callable[..., Config]
SAMPLED = {
    "user_features",
    "item_features",
    "training_train",
    "training_validation",
    "training_test",
}


def _set_all(table: str, column: str, value: object) -> Callable[[Tables], None]:
    def mutate(tables: Tables) -> None:
        frame = tables[table]
        tables[table] = frame.with_columns(pl.lit(value).cast(frame.schema[column]).alias(column))

    return mutate


def _null_key(tables: Tables) -> None:
    frame = tables["user_features"]
    last = pl.int_range(pl.len()) == frame.height - 1
    tables["user_features"] = frame.with_columns(
        pl.when(last).then(None).otherwise(pl.col(S.USER_ID)).alias(S.USER_ID)
    )


def test_big_derived_tables_sample_feature_checks_and_say_so(dataset: Build) -> None:
    cfg = dataset(sample_rows=4)
    result = run_gate(cfg, date=DAY, stage="all")
    assert result.passed, [f.message() for f in result.failures]
    assert {s.suite for s in result.sampled} == SAMPLED
    # One outcome per table, counting every row of it; events and items are never sampled.
    outcomes = {o.suite: o for o in result.outcomes}
    assert set(outcomes) == {"events", "items", "imbalance", *SAMPLED}
    users = next(s for s in result.sampled if s.suite == "user_features")
    assert outcomes["user_features"].rows == users.rows == 10
    assert users.sample_rows == 4
    assert "feature_range(user_conversion_rate)" in users.checks
    assert not any(
        c.startswith(("keys_not_null", "unique_rows", "freshness")) for c in users.checks
    )
    summary = json.loads(Path(result.outputs["summary"]).read_text())
    assert summary["gate"]["sampled"]["user_features"]["sample_rows"] == 4
    assert summary["gate"]["sampled"]["user_features"]["detects_rate_above"] == detection_rate(4)
    assert "sampled: user_features: " in format_result(result)


def test_unsampled_gate_checks_the_same_expectations(dataset: Build) -> None:
    whole = run_gate(dataset(), date=DAY, stage="all")
    sampled = run_gate(dataset(sample_rows=4), date=DAY, stage="all")
    assert whole.sampled == []
    assert {o.suite: o.evaluated for o in whole.outcomes} == {
        o.suite: o.evaluated for o in sampled.outcomes
    }


def test_key_defect_in_one_row_fails_although_the_table_is_sampled(dataset: Build) -> None:
    result = run_gate(dataset(_null_key, sample_rows=4), date=DAY, stage="features")
    assert not result.passed
    failure = next(f for f in result.failures if f.check == "keys_not_null")
    assert (failure.suite, failure.column) == ("user_features", S.USER_ID)
    assert "sample" not in failure.observed  # checked on every row


def test_feature_defect_is_found_in_the_sample_and_reported_as_such(dataset: Build) -> None:
    cfg = dataset(_set_all("user_features", "user_conversion_rate", 2.0), sample_rows=4)
    result = run_gate(cfg, date=DAY, stage="features")
    assert not result.passed
    failure = next(f for f in result.failures if f.column == "user_conversion_rate")
    assert failure.suite == "user_features"
    assert failure.check == "feature_range"
    assert "in a seeded sample of 4 of 10 rows" in failure.observed


def test_sample_rows_zero_validates_every_row(dataset: Build) -> None:
    result = run_gate(dataset(sample_rows=0), date=DAY, stage="all")
    assert result.passed
    assert result.sampled == []
