"""The Polars offline store through Feast's own API: semantics, frame kinds, names, pulls."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import Config
from longtail.features import user_feature_schema
from longtail.paths import Layout
from longtail.store.pit import point_in_time_join

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tiny_cfg: Config) -> Any:
    from longtail.store import apply_definitions, feature_store

    fs = feature_store(tiny_cfg)
    apply_definitions(fs, tiny_cfg)
    return fs


def _entity(cfg: Config) -> pl.DataFrame:
    """Sampled views plus rows no snapshot can serve: unknown ids, too early, too late."""
    events = pl.read_parquet(Layout(cfg.data_dir).table("events"))
    views = (
        events.filter(pl.col(S.EVENT_TYPE) == "view")
        .select(S.USER_ID, S.ITEM_ID, S.EVENT_TIME)
        .sample(400, seed=1)
    )
    t = dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC)
    odd = pl.DataFrame(
        {
            S.USER_ID: [999_999, 1, 1, 1, 1],
            S.ITEM_ID: [1, 999_999, 1, 1, 1],
            S.EVENT_TIME: [
                t,
                t,
                dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
                dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
                t,
            ],
        },
        schema=views.schema,
    )
    return pl.concat([views, odd, views.head(5)])  # duplicates at the end


def test_every_entity_row_comes_back_once_in_order_with_nulls_where_nothing_matches(
    store: Any, tiny_cfg: Config
) -> None:
    entity = _entity(tiny_cfg)
    out = pl.from_arrow(
        store.get_historical_features(
            entity_df=entity, features=store.get_feature_service("ranking_v1")
        ).to_arrow()
    )
    assert isinstance(out, pl.DataFrame)
    assert out.select(S.TRAINING_KEYS).equals(entity)
    # Same answer as the join on the source file, with the view's TTL.
    users = pl.read_parquet(Layout(tiny_cfg.data_dir).features / "user_features.parquet")
    feats = [
        c
        for c in user_feature_schema(tiny_cfg.features)
        if c.startswith("user_") and c != S.USER_ID
    ]
    expected = point_in_time_join(
        entity,
        users,
        keys=[(S.USER_ID, S.USER_ID)],
        entity_timestamp=S.EVENT_TIME,
        feature_timestamp=S.SNAPSHOT_TIME,
        columns={c: c for c in feats},
        ttl=dt.timedelta(days=tiny_cfg.features.ttl_days),
    )
    assert out.select(feats).equals(expected)
    n = entity.height
    # unknown user, unknown item, before any snapshot, long after the last one (TTL)
    assert out["user_views_7d"][n - 10] is None
    assert out["item_views_7d"][n - 9] is None
    assert out["user_views_7d"][n - 8] is None and out["item_views_7d"][n - 8] is None
    assert out["user_views_7d"][n - 7] is None and out["item_views_7d"][n - 7] is None
    assert out["item_views_7d"][n - 6] is not None
    assert out.tail(5).select(feats).equals(out.head(5).select(feats))


@pytest.mark.parametrize("kind", ["pandas", "arrow", "polars"])
def test_pandas_arrow_and_polars_entity_frames_give_the_same_features(
    store: Any, tiny_cfg: Config, kind: str
) -> None:
    entity = _entity(tiny_cfg).head(50)
    frame: Any = {"pandas": entity.to_pandas(), "arrow": entity.to_arrow(), "polars": entity}[kind]
    refs = ["user_features:user_views_7d", "item_features:item_price"]
    got = pl.from_pandas(store.get_historical_features(entity_df=frame, features=refs).to_df())
    want = pl.from_arrow(store.get_historical_features(entity_df=entity, features=refs).to_arrow())
    assert isinstance(want, pl.DataFrame)
    assert got.height == 50
    assert got["user_views_7d"].to_list() == want["user_views_7d"].to_list()
    assert got["item_price"].to_list() == want["item_price"].to_list()


def test_the_source_key_filter_does_not_change_the_features(
    store: Any, tiny_cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longtail.store import offline

    entity = _entity(tiny_cfg)
    refs = ["user_features:user_views_7d", "item_features:item_price"]

    def run(ratio: int) -> pl.DataFrame:
        monkeypatch.setattr(offline, "_KEY_FILTER_RATIO", ratio)
        out = pl.from_arrow(
            store.get_historical_features(entity_df=entity, features=refs).to_arrow()
        )
        assert isinstance(out, pl.DataFrame)
        return out

    filtered, unfiltered = run(10**9), run(0)  # always filter by key; never
    assert filtered.equals(unfiltered)
    assert filtered["user_views_7d"].null_count() < filtered.height


def test_full_feature_names_prefix_the_view_name(store: Any, tiny_cfg: Config) -> None:
    entity = _entity(tiny_cfg).head(20)
    out = store.get_historical_features(
        entity_df=entity,
        features=["user_features:user_views_7d", "item_features:item_views_7d"],
        full_feature_names=True,
    ).to_df()
    assert list(out.columns) == [
        S.USER_ID,
        S.ITEM_ID,
        S.EVENT_TIME,
        "user_features__user_views_7d",
        "item_features__item_views_7d",
    ]


def test_pull_latest_returns_one_row_per_key_the_latest_in_range(
    store: Any, tiny_cfg: Config
) -> None:
    view = store.get_feature_view("user_features")
    provider = store._get_provider()
    start = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    end = dt.datetime(2024, 1, 9, tzinfo=dt.UTC)
    job = provider.offline_store.pull_latest_from_table_or_query(
        config=store.config,
        data_source=view.batch_source,
        join_key_columns=[S.USER_ID],
        feature_name_columns=["user_views_7d"],
        timestamp_field=S.SNAPSHOT_TIME,
        created_timestamp_column=None,
        start_date=start,
        end_date=end,
    )
    got = pl.from_arrow(job.to_arrow())
    assert isinstance(got, pl.DataFrame)
    src = pl.read_parquet(Layout(tiny_cfg.data_dir).features / "user_features.parquet")
    want = (
        src.filter(pl.col(S.SNAPSHOT_TIME).is_between(start, end))
        .sort(S.SNAPSHOT_TIME)
        .group_by(S.USER_ID)
        .agg(pl.col(S.SNAPSHOT_TIME).last(), pl.col("user_views_7d").last())
    )
    assert got[S.USER_ID].is_unique().all()
    joined = got.join(want, on=S.USER_ID, suffix="_want")
    assert joined.height == want.height == got.height
    assert (joined[S.SNAPSHOT_TIME] == end).all()
    assert joined["user_views_7d"].equals(joined["user_views_7d_want"], check_names=False)


def test_a_sql_entity_frame_is_refused_with_a_clear_error(store: Any) -> None:
    from longtail.errors import StageError

    with pytest.raises(StageError, match="entity frame"):
        store.get_historical_features(
            entity_df="SELECT 1", features=["user_features:user_views_7d"]
        ).to_df()


def _blocks(cfg: Config, at: dt.datetime, *, n: int, size: int) -> list[pl.DataFrame]:
    """``n`` small entity frames at one time, as scoring's blocks ask (unknown ids included)."""
    events = pl.read_parquet(Layout(cfg.data_dir).table("events"))
    pairs = events.select(S.USER_ID, S.ITEM_ID).unique(maintain_order=True).head(n * size - 1)
    pairs = pl.concat([pairs, pl.DataFrame({S.USER_ID: [999_999], S.ITEM_ID: [999_999]})])
    rows = pairs.with_columns(pl.lit(at).dt.cast_time_unit("us").alias(S.EVENT_TIME))
    return [rows.slice(i * size, size) for i in range(n)]


def test_kept_source_slices_give_the_features_of_a_fresh_read(store: Any, tiny_cfg: Config) -> None:
    from longtail.store import offline

    refs = store.get_feature_service("ranking_v1")
    t1 = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
    t2 = dt.datetime(2024, 1, 20, 6, tzinfo=dt.UTC)
    # t1 again after t2: a slice kept for another window must not answer.
    blocks = [*_blocks(tiny_cfg, t1, n=3, size=40), *_blocks(tiny_cfg, t2, n=2, size=40)]
    blocks += _blocks(tiny_cfg, t1, n=1, size=40)

    def read(block: pl.DataFrame) -> pl.DataFrame:
        job = store.get_historical_features(entity_df=block, features=refs)
        out = pl.from_arrow(job.to_arrow())
        assert isinstance(out, pl.DataFrame)
        return out

    fresh = [read(b) for b in blocks]
    try:
        offline.keep_source_slices()
        kept = [read(b) for b in blocks]
        assert offline._SLICES is not None and len(offline._SLICES) == 2  # user and item
    finally:
        offline.forget_source_slices()
    for got, want in zip(kept, fresh, strict=True):
        assert got.equals(want)
    assert fresh[0]["user_views_7d"].null_count() < fresh[0].height
    # The windows differ in what they serve, so a slice answering the wrong one would show.
    assert not fresh[3].drop(S.EVENT_TIME).equals(fresh[0].drop(S.EVENT_TIME))


def test_a_kept_slice_is_read_again_when_the_source_is_rewritten(
    store: Any, tiny_cfg: Config
) -> None:
    from longtail.io import write_parquet
    from longtail.store import offline

    block = _blocks(tiny_cfg, dt.datetime(2024, 1, 15, tzinfo=dt.UTC), n=1, size=40)[0]
    refs = ["user_features:user_views_7d"]
    path = Layout(tiny_cfg.data_dir).features / "user_features.parquet"
    original = pl.read_parquet(path)

    def views() -> list[Any]:
        job = store.get_historical_features(entity_df=block, features=refs)
        return list(pl.from_arrow(job.to_arrow())["user_views_7d"])  # type: ignore[index]

    try:
        offline.keep_source_slices()
        before = views()
        write_parquet(original.with_columns(pl.col("user_views_7d") + 1000), path)
        after = views()
    finally:
        offline.forget_source_slices()
        write_parquet(original, path)
    assert [None if v is None else v + 1000 for v in before] == after
    assert any(v is not None for v in before)
