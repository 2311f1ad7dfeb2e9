from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import Config
from longtail.daily import gate_step
from longtail.daily.runner import RunContext, Step, StepFailed, run_steps
from longtail.errors import ConfigError, GateError
from longtail.paths import Layout
from longtail.validation import ensure_passed, run_gate
from longtail.validation.history import HISTORY_FILE, read_history, record_run
from tests.validation.validation_data import DAY, NOON, Tables

pytestmark = pytest.mark.unit
Build = Callable[..., Config]


def _set(table: str, row: int, column: str, value: object) -> Callable[[Tables], None]:
    def mutate(tables: Tables) -> None:
        frame = tables[table]
        dtype = frame.schema[column]
        new = pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column))
        tables[table] = frame.with_columns(new.cast(dtype, strict=False).alias(column))

    return mutate


def _apply(table: str, fn: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Tables], None]:
    def mutate(tables: Tables) -> None:
        tables[table] = fn(tables[table])

    return mutate


def _no_purchases(tables: Tables) -> None:
    tables["events"] = tables["events"].filter(pl.col(S.EVENT_TYPE) != "purchase")


LONG_AGO = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
FUTURE = NOON + dt.timedelta(days=5)

# (id, stage, mutation, suite, column named in the failure)
DEFECTS = [
    (
        "events-columns",
        "canonical",
        _apply("events", lambda f: f.drop(S.EVENT_TYPE)),
        "events",
        "event_type",
    ),
    (
        "events-types",
        "canonical",
        _apply("events", lambda f: f.with_columns(pl.col(S.USER_ID).cast(pl.String))),
        "events",
        "user_id",
    ),
    ("events-null-id", "canonical", _set("events", 3, S.USER_ID, None), "events", "user_id"),
    (
        "events-event-type",
        "canonical",
        _set("events", 3, S.EVENT_TYPE, "click"),
        "events",
        "event_type",
    ),
    (
        "events-window",
        "canonical",
        _set("events", 3, S.EVENT_TIME, LONG_AGO),
        "events",
        "event_time",
    ),
    ("events-future", "canonical", _set("events", 3, S.EVENT_TIME, FUTURE), "events", "event_time"),
    (
        "events-freshness",
        "canonical",
        _apply("events", lambda f: f.with_columns(pl.col(S.EVENT_TIME) - pl.duration(days=20))),
        "events",
        "event_time",
    ),
    ("events-label-rate", "canonical", _no_purchases, "imbalance", "events_label_rate"),
    ("items-price", "canonical", _set("items", 2, S.PRICE, -1.0), "items", "price"),
    (
        "items-unique",
        "canonical",
        _apply("items", lambda f: pl.concat([f, f.head(1)])),
        "items",
        "item_id, valid_from",
    ),
    ("items-future", "canonical", _set("items", 2, S.VALID_FROM, FUTURE), "items", "valid_from"),
    (
        "user-unique",
        "features",
        _apply("user_features", lambda f: pl.concat([f, f.tail(1)])),
        "user_features",
        "user_id, event_timestamp",
    ),
    (
        "user-null-id",
        "features",
        _set("user_features", 1, S.USER_ID, None),
        "user_features",
        "user_id",
    ),
    (
        "user-freshness",
        "features",
        _apply(
            "user_features",
            lambda f: f.with_columns(pl.col("event_timestamp") - pl.duration(days=3)),
        ),
        "user_features",
        "event_timestamp",
    ),
    (
        "user-window",
        "features",
        _set("user_features", 1, "event_timestamp", NOON + dt.timedelta(days=2)),
        "user_features",
        "event_timestamp",
    ),
    (
        "user-rate-range",
        "features",
        _set("user_features", 1, "user_conversion_rate", 1.5),
        "user_features",
        "user_conversion_rate",
    ),
    (
        "user-count-range",
        "features",
        _set("user_features", 1, "user_views_7d", -4),
        "user_features",
        "user_views_7d",
    ),
    (
        "user-types",
        "features",
        _apply(
            "user_features",
            lambda f: f.with_columns(pl.col("event_timestamp").dt.replace_time_zone(None)),
        ),
        "user_features",
        "event_timestamp",
    ),
    (
        "item-price",
        "features",
        _set("item_features", 1, "item_price", -3.0),
        "item_features",
        "item_price",
    ),
    (
        "item-bucket",
        "features",
        _set("item_features", 1, S.POPULARITY_BUCKET, "neck"),
        "item_features",
        "item_popularity_bucket",
    ),
    (
        "item-columns",
        "features",
        _apply("item_features", lambda f: f.drop("event_timestamp")),
        "item_features",
        "event_timestamp",
    ),
    ("train-label-values", "training", _set("train", 1, S.LABEL, 2), "training_train", "label"),
    (
        "train-label-rate",
        "training",
        _apply("train", lambda f: f.with_columns(pl.lit(0, pl.Int8).alias(S.LABEL))),
        "training_train",
        "label",
    ),
    ("test-split-values", "training", _set("test", 1, S.SPLIT, "train"), "training_test", "split"),
    (
        "validation-unique",
        "training",
        _apply("validation", lambda f: pl.concat([f, f.head(1)])),
        "training_validation",
        "user_id, item_id, event_time",
    ),
    (
        "validation-window",
        "training",
        _set("validation", 1, S.EVENT_TIME, LONG_AGO),
        "training_validation",
        "event_time",
    ),
    ("train-null-item", "training", _set("train", 1, S.ITEM_ID, None), "training_train", "item_id"),
    (
        "train-columns",
        "training",
        _apply("train", lambda f: f.drop(S.POPULARITY_BUCKET)),
        "training_train",
        "item_popularity_bucket",
    ),
]


def test_clean_data_passes_every_stage(dataset: Build) -> None:
    cfg = dataset()
    result = run_gate(cfg, date=DAY, stage="all")
    assert result.passed, [f.message() for f in result.failures]
    assert result.skipped == []
    suites = {o.suite for o in result.outcomes}
    assert suites == {
        "events",
        "items",
        "user_features",
        "item_features",
        "training_train",
        "training_validation",
        "training_test",
        "imbalance",
    }
    ensure_passed(result)  # raises nothing


@pytest.mark.parametrize(
    ("stage", "mutate", "suite", "column"), [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS]
)
def test_seeded_defect_fails_the_gate_and_names_the_column(
    dataset: Build, stage: str, mutate: Callable[[Tables], None], suite: str, column: str
) -> None:
    cfg = dataset(mutate)
    result = run_gate(cfg, date=DAY, stage=stage)  # type: ignore[arg-type]
    assert not result.passed
    named = [(f.suite, f.column) for f in result.failures]
    assert (suite, column) in named, [f.message() for f in result.failures]
    with pytest.raises(GateError, match=column.split(",")[0]):
        ensure_passed(result)


def test_no_purchase_fails_with_label_rate_out_of_bounds(dataset: Build) -> None:
    cfg = dataset(_no_purchases)
    result = run_gate(cfg, date=DAY, stage="canonical")
    messages = [f.message() for f in result.failures]
    assert any("label rate" in m and "out of bounds" in m for m in messages), messages
    failure = next(f for f in result.failures if f.column == "events_label_rate")
    assert failure.observed == "0"
    assert failure.bound == "[0.002, 0.2]"


def test_row_count_far_from_previous_run_fails(dataset: Build) -> None:
    cfg = dataset()
    layout = Layout(cfg.data_dir)
    previous = {"date": "2024-03-09", "passed": True, "rows": {"events": 1000}, "metrics": {}}
    record_run(layout.reports / HISTORY_FILE, previous)
    result = run_gate(cfg, date=DAY, stage="canonical")
    failure = next(f for f in result.failures if f.check == "row_count")
    assert failure.suite == "events"
    assert failure.observed == "105"
    assert failure.bound == "[500, 1500]"


def test_failed_previous_run_is_not_the_baseline(dataset: Build) -> None:
    cfg = dataset()
    layout = Layout(cfg.data_dir)
    bad = {"date": "2024-03-09", "passed": False, "rows": {"events": 1000}, "metrics": {}}
    record_run(layout.reports / HISTORY_FILE, bad)
    assert run_gate(cfg, date=DAY, stage="canonical").passed


@pytest.mark.parametrize(
    ("metric", "previous", "column"),
    [("events_label_rate", 0.5, "events_label_rate_drift"), ("item_gini", 0.9, "item_gini_drift")],
)
def test_drift_against_previous_run_fails(
    dataset: Build, metric: str, previous: float, column: str
) -> None:
    cfg = dataset()
    layout = Layout(cfg.data_dir)
    record = {"date": "2024-03-09", "passed": True, "rows": {}, "metrics": {metric: previous}}
    record_run(layout.reports / HISTORY_FILE, record)
    result = run_gate(cfg, date=DAY, stage="canonical")
    assert [f.column for f in result.failures] == [column]


def test_warning_prints_but_does_not_fail(dataset: Build) -> None:
    cfg = dataset(_set("items", 2, S.PRICE, -1.0), warn_only=["items.price_non_negative"])
    result = run_gate(cfg, date=DAY, stage="canonical")
    assert result.passed
    assert [(w.suite, w.column, w.severity) for w in result.warnings] == [
        ("items", "price", "warning")
    ]


def test_unknown_warn_only_entry_is_a_config_error(dataset: Build) -> None:
    cfg = dataset(warn_only=["items.price_nonnegative"])
    with pytest.raises(ConfigError, match="price_nonnegative"):
        run_gate(cfg, date=DAY, stage="canonical")


def test_all_stage_skips_absent_tables_and_says_so(dataset: Build) -> None:
    def canonical_only(tables: Tables) -> None:
        for name in ("user_features", "item_features", "train", "validation", "test"):
            del tables[name]

    cfg = dataset(canonical_only)
    result = run_gate(cfg, date=DAY)
    assert result.passed
    assert len(result.skipped) == 5
    assert any("user_features.parquet" in s for s in result.skipped)


def test_named_stage_without_its_tables_fails(dataset: Build) -> None:
    def no_features(tables: Tables) -> None:
        del tables["user_features"], tables["item_features"]

    result = run_gate(dataset(no_features), date=DAY, stage="features")
    assert {f.check for f in result.failures} == {"table_exists"}
    assert {f.suite for f in result.failures} == {"user_features", "item_features"}


def test_feature_suite_covers_columns_added_later(dataset: Build) -> None:
    def new_feature(tables: Tables) -> None:
        frame = tables["user_features"]
        tables["user_features"] = frame.with_columns(user_carts_14d=pl.lit(-1, pl.Int64))

    result = run_gate(dataset(new_feature), date=DAY, stage="features")
    assert [f.column for f in result.failures] == ["user_carts_14d"]


def test_outputs_summary_report_docs_and_one_history_record_per_date(dataset: Build) -> None:
    cfg = dataset(data_docs=True)
    first = run_gate(cfg, date=DAY)
    again = run_gate(cfg, date=DAY)
    assert first.outputs == again.outputs
    summary = json.loads(Path(again.outputs["summary"]).read_text())
    assert summary["gate"]["passed"] is True
    assert summary["imbalance"]["training"]["by_split"][0]["label_rate"] == pytest.approx(0.1)
    html = Path(again.outputs["report"]).read_text()
    assert "PASSED" in html and "data:image/png;base64," in html
    assert Path(again.outputs["data_docs"]).is_file()
    history = read_history(Path(again.outputs["history"]))
    assert [h["date"] for h in history] == ["2024-03-10"]
    assert history[0]["rows"]["events"] == 105


def test_gate_step_stops_the_daily_chain_before_later_steps(dataset: Build) -> None:
    cfg = dataset(_no_purchases)
    layout = Layout(cfg.data_dir)
    ran: list[str] = []
    train = Step(
        name="train",
        run=lambda ctx: ran.append("train") or {},
        inputs=lambda ctx: [],
        outputs=lambda ctx: [],
    )
    ctx = RunContext(cfg=cfg, layout=layout, date=DAY)
    with pytest.raises(StepFailed, match="label rate out of bounds"):
        run_steps([gate_step(stage="canonical"), train], ctx, manifest_path=layout.runs / "m.json")
    assert ran == []
