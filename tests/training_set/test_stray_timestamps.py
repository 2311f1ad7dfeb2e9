"""A 9-day behaviour log with a few stray early events, by the README's generic config alone.

Before quantile boundaries, the split cut the time range by fraction: the
strays weeks earlier put every boundary in the empty weeks between them and the
bulk, and the features stage stopped with "split(s) ['validation'] get no rows".
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import Config, SyntheticSource, config_from_dict
from longtail.paths import Layout
from longtail.synthetic import generate

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "retailrocket_sample"
START = dt.datetime(2015, 9, 10, tzinfo=dt.UTC)
DAYS = 9
STRAYS = [dt.datetime(2015, m, d, tzinfo=dt.UTC) for m, d in ((5, 3), (6, 2), (7, 4), (8, 15))]
NAMES = {"view": "pv", "cart": "cart", "purchase": "buy"}


def _synthetic() -> pl.DataFrame:
    src = SyntheticSource(
        n_users=250, n_items=150, n_top_categories=3, n_leaf_categories=8,
        start=START.date(), days=DAYS, sessions_per_user_day=0.5,
    )  # fmt: skip
    events = generate(src, seed=5).events
    return events.select(
        S.USER_ID, S.ITEM_ID, pl.lit(1, pl.Int64).alias(S.CATEGORY_ID), S.EVENT_TYPE, S.EVENT_TIME
    )


def _real_sample() -> pl.DataFrame:
    """The real RetailRocket sample's 4.5 months, squeezed into 9 days (order kept)."""
    ev = pl.read_csv(SAMPLE / "events_sample.csv", schema_overrides={"transactionid": pl.String})
    cats = pl.read_csv(SAMPLE / "item_category.csv").select(
        pl.col("ItemId").alias("itemid"), "categoryid"
    )
    t0, t1 = ev["timestamp"].min(), ev["timestamp"].max()
    assert isinstance(t0, int) and isinstance(t1, int)
    scale = (DAYS * 86_400_000 - 1) / (t1 - t0)
    ms = ((pl.col("timestamp") - t0).cast(pl.Float64) * scale).cast(pl.Int64) + int(
        START.timestamp() * 1000
    )
    types = {"view": "view", "addtocart": "cart", "transaction": "purchase"}
    return ev.join(cats.unique("itemid"), on="itemid", how="left").select(
        pl.col("visitorid").alias(S.USER_ID),
        pl.col("itemid").alias(S.ITEM_ID),
        pl.col("categoryid").alias(S.CATEGORY_ID),
        pl.col("event").replace_strict(types).alias(S.EVENT_TYPE),
        pl.from_epoch(ms, time_unit="ms").dt.replace_time_zone("UTC").alias(S.EVENT_TIME),
    )


def _generic_log(events: pl.DataFrame, path: Path) -> None:
    """Headerless CSV like the README's example: user, item, category, event, unix seconds."""
    views = events.filter(pl.col(S.EVENT_TYPE) == "view").sort(S.EVENT_TIME).head(len(STRAYS))
    strays = views.with_columns(pl.Series(S.EVENT_TIME, STRAYS).dt.cast_time_unit("us"))
    both = pl.concat([strays, events.with_columns(pl.col(S.EVENT_TIME).dt.cast_time_unit("us"))])
    both.select(
        S.USER_ID,
        S.ITEM_ID,
        S.CATEGORY_ID,
        pl.col(S.EVENT_TYPE).replace_strict(NAMES),
        pl.col(S.EVENT_TIME).dt.epoch("s"),
    ).write_csv(path, include_header=False)


def _readme_config(events: Path, data: Path) -> Config:
    return config_from_dict(
        {
            "data_dir": str(data),
            "source": {
                "kind": "generic",
                "events": str(events),
                "has_header": False,
                "id_encoding": "int",
                "columns": {
                    "user_id": 1,
                    "item_id": 2,
                    "category_id": 3,
                    "event_type": 4,
                    "event_time": 5,
                },
                "event_time": {"unit": "s"},
                "event_names": {
                    "view": ["pv"],
                    "cart": ["cart"],
                    "purchase": ["buy"],
                    "ignore": ["fav"],
                },
            },
            # no [split] keys, no [labels]: the README's config as it stands
        }
    )


@pytest.mark.parametrize(
    "log",
    [
        "synthetic",
        pytest.param(
            "real_sample",
            marks=pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"no shared sample at {SAMPLE}"),
        ),
    ],
)
@pytest.mark.parametrize("population", ["candidates", "views"])
def test_a_nine_day_log_with_stray_early_events_runs_the_features_stage(
    tmp_path: Path, log: str, population: str
) -> None:
    from longtail.config import LabelsConfig
    from longtail.features.pipeline import default_until, run_features
    from longtail.ingest import run_ingest

    events = _synthetic() if log == "synthetic" else _real_sample()
    path = tmp_path / "events.csv"
    _generic_log(events, path)
    cfg = _readme_config(path, tmp_path / "data")
    # The default 72 h horizon: 9 days cannot hold the unlabelled last 72 h plus two
    # dropped 72 h windows, so the auto embargo cuts windows at the boundaries instead.
    labels = LabelsConfig(population=population)  # type: ignore[arg-type]
    assert labels.horizon_hours == 72
    cfg = cfg.model_copy(update={"labels": labels})
    run_ingest(cfg, now=START + dt.timedelta(days=DAYS))
    run = run_features(cfg, until=default_until(cfg))
    splits = run.training.splits
    assert all(splits[name].rows > 0 for name in S.SPLITS)
    saved = json.loads((Layout(cfg.data_dir).reports / "training_set_summary.json").read_text())
    assert saved["outside_bulk"]["far_before"] == len(STRAYS)
    assert [e["mode"] for e in saved["embargo"]] == ["truncate", "truncate"]
    assert all(e["rows_dropped"] == 0 for e in saved["embargo"])
    assert any("label windows cut" in line for line in run.training.lines())
    val_start = splits["validation"].start
    assert val_start is not None and val_start > START + dt.timedelta(days=3)
    if population == "candidates":
        # Candidate rows are split by snapshot time with the views' boundaries; train
        # negatives are thinned, so row shares are not the configured fractions.
        return
    # the boundaries sit in the bulk, at the configured shares of its rows
    # (shares of the rows before the embargo, which drops rows of train and validation)
    labelled = saved["views_labelled"]
    assert splits["test"].rows == pytest.approx(0.15 * labelled, rel=0.05)
    assert 0 < splits["validation"].rows <= 0.15 * labelled * 1.05
    val_start = splits["validation"].start
    assert val_start is not None and val_start > START + dt.timedelta(days=3)
    train = pl.read_parquet(Layout(cfg.data_dir).training / "train.parquet")
    assert train.filter(pl.col(S.EVENT_TIME) < START).height == len(STRAYS)
    saved = json.loads((Layout(cfg.data_dir).reports / "training_set_summary.json").read_text())
    assert saved["outside_bulk"]["far_before"] == len(STRAYS)
    assert saved["outside_bulk"]["far_after"] == 0
    assert any("far outside the bulk" in line for line in run.training.lines())
