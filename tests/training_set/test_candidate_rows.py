"""Candidate rows: the scoring population replayed at past snapshot times, labelled ahead."""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import Config, LabelsConfig, SyntheticSource
from longtail.ingest import generate
from longtail.training_set.candidate_rows import candidate_rows, snapshot_times

pytestmark = pytest.mark.unit

CUTOFF = dt.datetime(2024, 1, 22, tzinfo=dt.UTC)
H = dt.timedelta(hours=72)


@pytest.fixture(scope="module")
def shop() -> tuple[pl.DataFrame, pl.DataFrame]:
    src = SyntheticSource(
        n_users=150, n_items=120, n_top_categories=3, n_leaf_categories=8, days=21
    )
    t = generate(src, seed=5)
    return t.events, t.items


def test_snapshot_times_end_where_the_label_window_still_fits() -> None:
    first = dt.datetime(2024, 1, 1, 13, tzinfo=dt.UTC)
    times = snapshot_times(first, CUTOFF, horizon=H, every_days=2)
    assert times[-1] == dt.datetime(2024, 1, 19, tzinfo=dt.UTC)
    assert times[0] > first
    assert all(t + H <= CUTOFF for t in times)
    assert {(b - a).days for a, b in itertools.pairwise(times)} == {2}


def test_labels_are_target_events_in_the_window_after_t_and_only_train_is_thinned(
    shop: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    events, items = shop
    cfg = Config(labels=LabelsConfig(train_negative_rate=0.1, users_per_snapshot=60))
    built = candidate_rows(events, items, cfg, cutoff=CUTOFF)
    rows = built.rows
    buys = events.filter(pl.col(S.EVENT_TYPE) == "purchase")
    pos = rows.filter(pl.col(S.LABEL) == 1).sample(min(20, rows[S.LABEL].sum()), seed=1)
    for r in pos.iter_rows(named=True):
        t = r[S.EVENT_TIME]
        hit = buys.filter(
            (pl.col(S.USER_ID) == r[S.USER_ID])
            & (pl.col(S.ITEM_ID) == r[S.ITEM_ID])
            & (pl.col(S.EVENT_TIME) >= t)
            & (pl.col(S.EVENT_TIME) < t + H)
        )
        assert hit.height >= 1
    assert (rows[S.EVENT_TIME].max() + H) <= CUTOFF
    # Every positive generated is kept; only train negatives are thinned.
    for split in ("validation", "test"):
        assert built.kept[split] == built.generated[split]
    assert built.kept["train"] < built.generated["train"]
    train = rows.filter(pl.col(S.SPLIT) == "train")
    assert train[S.LABEL].mean() > rows.filter(pl.col(S.SPLIT) == "test")[S.LABEL].mean()


def test_a_positive_whose_purchase_comes_after_the_cutoff_is_never_labelled(
    shop: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    events, items = shop
    cfg = Config(labels=LabelsConfig(users_per_snapshot=60))
    early = candidate_rows(events, items, cfg, cutoff=CUTOFF - dt.timedelta(days=4))
    assert (early.rows[S.EVENT_TIME].max() + H) <= CUTOFF - dt.timedelta(days=4)
    # Rebuilt from events before that cutoff only, the rows are the same.
    cut = CUTOFF - dt.timedelta(days=4)
    again = candidate_rows(events.filter(pl.col(S.EVENT_TIME) < cut), items, cfg, cutoff=cut)
    assert again.rows.equals(early.rows)
