"""The training set end to end on the tiny shop: features through Feast, labels, splits, reruns."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import polars as pl
import pytest

from longtail import schema as S
from longtail.candidates import PAIR_FEATURES
from longtail.config import Config
from longtail.paths import Layout

pytestmark = pytest.mark.integration

UNTIL = dt.date(2024, 1, 22)


@pytest.fixture(scope="module")
def built(tiny_cfg: Config) -> tuple[Any, Any]:
    from longtail.store import apply_definitions, feature_store
    from longtail.training_set import build_training_set

    store = feature_store(tiny_cfg)
    apply_definitions(store, tiny_cfg)
    return store, build_training_set(tiny_cfg, store, until=UNTIL)


def _digest(cfg: Config) -> dict[str, str]:
    folder = Layout(cfg.data_dir).training
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.parquet")}


def test_splits_have_the_training_row_contract_and_the_reported_label_rates(
    tiny_cfg: Config, built: tuple[Any, Any]
) -> None:
    _, summary = built
    frames = {
        n: pl.read_parquet(Layout(tiny_cfg.data_dir).training / f"{n}.parquet") for n in S.SPLITS
    }
    for name, frame in frames.items():
        assert frame.columns[:5] == [S.USER_ID, S.ITEM_ID, S.EVENT_TIME, S.LABEL, S.SPLIT]
        assert frame.schema[S.EVENT_TIME] == S.TIME
        assert frame.schema[S.USER_RECENT_ITEMS] == pl.List(pl.Int64)
        assert (frame[S.SPLIT] == name).all()
        assert set(frame[S.POPULARITY_BUCKET].unique()) <= set(S.BUCKETS)
        assert frame.height == summary.splits[name].rows
        assert frame[S.LABEL].mean() == pytest.approx(summary.splits[name].label_rate)
        dense = S.dense_feature_columns(frame)
        assert "user_views_7d" in dense and "item_conversion_rate" in dense
    assert frames["train"][S.EVENT_TIME].max() < frames["validation"][S.EVENT_TIME].min()
    assert frames["validation"][S.EVENT_TIME].max() < frames["test"][S.EVENT_TIME].min()
    assert 0 < summary.splits["train"].label_rate < 0.5


def test_no_written_label_window_reaches_the_next_split_and_the_summary_counts_the_embargo(
    tiny_cfg: Config, built: tuple[Any, Any]
) -> None:
    _, summary = built
    folder = Layout(tiny_cfg.data_dir).training
    frames = {n: pl.read_parquet(folder / f"{n}.parquet") for n in S.SPLITS}
    horizon = dt.timedelta(hours=tiny_cfg.labels.horizon_hours)
    for split, nxt in (("train", "validation"), ("validation", "test")):
        assert frames[split][S.EVENT_TIME].max() + horizon < frames[nxt][S.EVENT_TIME].min()
    written = json.loads((Layout(tiny_cfg.data_dir).reports / "training_set_summary.json")
                         .read_text())  # fmt: skip
    embargo = {e["split"]: e for e in written["embargo"]}
    assert set(embargo) == {"train", "validation"}
    for split, e in embargo.items():
        assert e["rows_dropped"] > 0
        assert e["rows_before"] - e["rows_dropped"] == summary.splits[split].rows
    dropped = sum(e["rows_dropped"] for e in embargo.values())
    assert written["views_labelled"] == sum(s.rows for s in summary.splits.values()) + dropped


def test_recent_items_of_a_row_were_viewed_strictly_before_it(
    tiny_cfg: Config, built: tuple[Any, Any]
) -> None:
    events = pl.read_parquet(Layout(tiny_cfg.data_dir).table("events")).filter(
        pl.col(S.EVENT_TYPE) == "view"
    )
    rows = pl.read_parquet(Layout(tiny_cfg.data_dir).training / "test.parquet").sample(30, seed=4)
    for row in rows.iter_rows(named=True):
        before = events.filter(
            (pl.col(S.USER_ID) == row[S.USER_ID]) & (pl.col(S.EVENT_TIME) < row[S.EVENT_TIME])
        ).sort(S.EVENT_TIME)
        recent = row[S.USER_RECENT_ITEMS] or []
        seen = before[S.ITEM_ID].to_list()
        # a suffix of the views before the snapshot, which is itself before the row
        assert (
            recent
            == seen[len(seen) - len(recent) - _gap(before, row) : len(seen) - _gap(before, row)]
        )


def _gap(before: pl.DataFrame, row: dict[str, Any]) -> int:
    """Views on the row's own day after midnight: not yet in the (daily) snapshot."""
    day = row[S.EVENT_TIME].replace(hour=0, minute=0, second=0, microsecond=0)
    return before.filter(pl.col(S.EVENT_TIME) >= day).height


def test_features_for_scoring_rows_match_the_training_rows(
    tiny_cfg: Config, built: tuple[Any, Any]
) -> None:
    from longtail.training_set import features_for

    store, _ = built
    rows = pl.read_parquet(Layout(tiny_cfg.data_dir).training / "validation.parquet").head(200)
    naive = rows.select(S.USER_ID, S.ITEM_ID, pl.col(S.EVENT_TIME).dt.replace_time_zone(None))
    got = features_for(store, naive.to_pandas(), service="ranking_v1")
    # Candidate rows also carry their source and pair features (not from Feast).
    assert got.equals(rows.drop(S.LABEL, S.SPLIT, "source", *PAIR_FEATURES))


def test_a_rerun_for_the_same_date_writes_the_same_files(
    tiny_cfg: Config, built: tuple[Any, Any]
) -> None:
    from longtail.training_set import build_training_set

    store, _ = built
    first = _digest(tiny_cfg)
    build_training_set(tiny_cfg, store, until=UNTIL)
    assert _digest(tiny_cfg) == first


def test_a_candidate_split_without_positives_says_what_to_change() -> None:
    from longtail.training_set.build import SplitStats, TrainingSetSummary

    stats = {
        "train": SplitStats(8_901, 0, 0.0, None, None),
        "validation": SplitStats(300, 2, 0.007, None, None),
        "test": SplitStats(300, 0, 0.0, None, None),
    }
    summary = TrainingSetSummary(UNTIL, 9_501, stats, {}, population="candidates")
    hint = [line for line in summary.lines() if "no positive" in line]
    assert len(hint) == 1
    assert "['train', 'test']" in hint[0] and 'population = "views"' in hint[0]
    views = TrainingSetSummary(UNTIL, 9_501, stats, {}, population="views")
    assert not any("no positive" in line for line in views.lines())
