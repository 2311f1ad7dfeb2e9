"""Integration: the scoring stage on the tiny shop, through Ray Data, Feast and a trained model.

The shop is built once per module (ingest, features up to D+1, a one-epoch model);
one scoring run is shared by the assertions on the lists, the manifest and the
online store; the rerun and the injected crash score again on the same inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import Config, StorageConfig, config_from_dict
from longtail.errors import StageError
from longtail.paths import Layout, RecommendationPartition, ScoringReport
from longtail.scoring.pipeline import ScoreResult, expected_users, run_scoring, scoring_time
from longtail.scoring.serving import RECS_FEATURES
from longtail.storage import DataStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY = Path(__file__).resolve().parents[2] / "jobs" / "configs" / "tiny.toml"
DATE = dt.date(2024, 1, 20)


@dataclass(frozen=True)
class Shop:
    cfg: Config
    layout: Layout
    users: pl.Series
    first: ScoreResult


def _tiny_config(data_dir: Path) -> Config:
    raw: dict[str, Any] = tomllib.loads(TINY.read_text(encoding="utf-8"))
    raw["data_dir"] = str(data_dir)
    raw["train"] = {
        **raw.get("train", {}),
        "epochs": 1,
        "batch_size": 512,
        "hash_buckets_user": 1_000,
        "hash_buckets_item": 1_000,
    }
    return config_from_dict(raw)


def _lists(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path / "*.parquet").sort(S.USER_ID, "rank")


@pytest.fixture(scope="module")
def shop(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    from longtail.features.pipeline import run_features
    from longtail.ingest import load_tables, run_ingest
    from longtail.train import fit

    cfg = _tiny_config(tmp_path_factory.mktemp("tiny"))
    layout = Layout(cfg.data_dir)
    run_ingest(cfg)
    run_features(cfg, until=DATE + dt.timedelta(days=1))
    fit(layout, cfg, strategy="none", version="v-score-test")
    events = load_tables(layout).events
    users = expected_users(events, cfg, as_of=scoring_time(DATE))
    return Shop(cfg, layout, users, run_scoring(cfg, date=DATE))


def test_every_expected_user_gets_exactly_one_list(shop: Shop) -> None:
    recs = _lists(shop.first.path)
    per_user = recs.group_by(S.USER_ID).agg(pl.col("rank").min().alias("first_rank"))
    assert shop.users.len() > 0
    assert per_user[S.USER_ID].sort().to_list() == shop.users.sort().to_list()
    assert per_user["first_rank"].to_list() == [1] * per_user.height


def test_lists_hold_k_distinct_items_ranked_one_to_n(shop: Shop) -> None:
    recs = _lists(shop.first.path)
    k = shop.cfg.score.k
    per_user = recs.group_by(S.USER_ID).agg(
        pl.len().alias("n"),
        pl.col(S.ITEM_ID).n_unique().alias("distinct"),
        (pl.col("rank") == pl.int_range(1, pl.len() + 1)).all().alias("ranks_ok"),
    )
    assert (per_user["n"] == per_user["distinct"]).all()
    assert per_user["ranks_ok"].all()
    assert per_user["n"].max() == k
    assert per_user.filter(pl.col("n") < k).height == shop.first.manifest["short_lists"]


def test_probabilities_are_in_the_unit_interval_and_follow_the_ranking(shop: Shop) -> None:
    recs = _lists(shop.first.path)
    p = recs["probability"]
    assert p.null_count() == 0
    assert p.min() >= 0.0  # type: ignore[operator]
    assert p.max() <= 1.0  # type: ignore[operator]
    # Ranks follow the raw score; calibration is monotone, so probabilities do too.
    worse = recs.with_columns(pl.col("score").diff().over(S.USER_ID).alias("d")).filter(
        pl.col("d") > 0
    )
    assert worse.height == 0


def test_manifest_counts_match_the_partition(shop: Shop) -> None:
    files = RecommendationPartition(shop.first.path)
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    recs = _lists(shop.first.path)
    assert manifest == shop.first.manifest
    assert manifest["users_expected"] == manifest["users_written"] == shop.users.len()
    assert manifest["rows"] == recs.height
    assert manifest["model_version"] == "v-score-test"
    assert recs["model_version"].unique().to_list() == ["v-score-test"]
    assert manifest["date"] == DATE.isoformat()
    assert manifest["duration_s"] > 0
    assert ScoringReport(shop.first.report).page.is_file()
    # The partition holds Parquet and _-prefixed metadata only: a dataset reader takes it.
    assert {p.name for p in shop.first.path.iterdir()} == {"part-0.parquet", "_manifest.json"}
    import pyarrow.dataset as pads

    dataset = pads.dataset(shop.first.path.parent, format="parquet", partitioning="hive")
    assert [p.name for p in shop.first.path.parent.iterdir()] == [shop.first.path.name]
    assert dataset.count_rows() == manifest["rows"]


def test_lists_are_readable_from_the_online_store(shop: Shop) -> None:
    from longtail.store import feature_store

    recs = _lists(shop.first.path)
    users = shop.users.sort()[:5].to_list()
    got = (
        feature_store(shop.cfg)
        .get_online_features(features=RECS_FEATURES, entity_rows=[{S.USER_ID: u} for u in users])
        .to_dict()
    )
    for i, user in enumerate(users):
        mine = recs.filter(pl.col(S.USER_ID) == user)
        assert got["rec_items"][i] == mine[S.ITEM_ID].to_list()
        assert got["rec_probabilities"][i] == pytest.approx(mine["probability"].to_list())
        assert got["rec_date"][i] == DATE.isoformat()
        assert got["rec_model_version"][i] == "v-score-test"


def test_rerun_writes_the_same_lists(shop: Shop) -> None:
    # Bit-identical, scores included: every forward pass has one shape
    # (LoadedModel.predict), so Ray Data's arrival-order batching cannot move a
    # score by an ulp and swap two near-tied items.
    before = _lists(shop.first.path)
    again = run_scoring(shop.cfg, date=DATE)
    after = _lists(again.path)
    assert again.path == shop.first.path
    assert after.drop("generated_at").equals(before.drop("generated_at"))


def test_crash_before_the_swap_leaves_the_previous_partition_byte_identical(shop: Shop) -> None:
    folder = shop.first.path
    before = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    with pytest.raises(RuntimeError, match="injected crash"):
        run_scoring(shop.cfg, date=DATE, simulate_crash_before_swap=True)
    after = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    assert after == before
    siblings = sorted(p.name for p in folder.parent.iterdir())
    assert siblings == [folder.name]
    assert not list(shop.layout.root.glob(".score-*"))


def test_actors_score_the_narrow_candidate_columns_exactly_as_the_full_ones(shop: Shop) -> None:
    from longtail.candidates import CandidatePlan, candidate_config
    from longtail.ingest import load_tables
    from longtail.scoring.pipeline import BatchScorer, for_actors
    from longtail.store.offline import forget_source_slices

    cfg, as_of = shop.cfg, scoring_time(DATE)
    tables = load_tables(shop.layout)
    plan = CandidatePlan(
        tables.events, tables.items, shop.users.head(40), as_of=as_of, seed=cfg.seed,
        cfg=candidate_config(cfg.score), head_share=cfg.features.head_share,
        torso_share=cfg.features.torso_share,
    )  # fmt: skip
    cands = pl.concat(list(plan))
    narrow = for_actors(cands)
    assert "source" not in narrow.columns
    assert narrow.estimated_size() < cands.estimated_size() * 0.6
    try:
        scorer = BatchScorer(
            config_json=cfg.model_dump_json(),
            model_path=str(shop.layout.models / "v-score-test"),
            as_of=as_of.isoformat(),
            reduce_to_top_k=False,
        )
        full = pl.from_arrow(scorer(cands.to_arrow()))
        got = pl.from_arrow(scorer(narrow.to_arrow()))
    finally:
        forget_source_slices()  # the scorer switched them on for this whole process
    assert isinstance(full, pl.DataFrame) and isinstance(got, pl.DataFrame)
    cols = [S.USER_ID, S.ITEM_ID, S.SCORE, S.PROBABILITY]
    assert got.select(cols).equals(full.select(cols))
    assert full[S.PROBABILITY].n_unique() > 10


def _working_copy(shop: Shop, root: Path) -> Layout:
    """A driver's local copy with only what driver-side stages leave: tables and registry."""
    import shutil

    work = Layout(root)
    for folder in (shop.layout.canonical, shop.layout.feast):
        shutil.copytree(folder, work.root / folder.relative_to(shop.layout.root))
    return work


def _on_store(shop: Shop, work: Layout, store: DataStore) -> Config:
    storage = StorageConfig(uri=store.uri, endpoint_url=store.endpoint_url)
    return shop.cfg.model_copy(update={"data_dir": work.root, "storage": storage})


def test_scoring_on_an_object_store_reads_only_the_store_and_writes_the_local_lists(
    shop: Shop, s3_store: DataStore, tmp_path: Path
) -> None:
    s3_store.push(shop.layout.root, ["features", "models"])
    # The working copy has no snapshots and no model: the actors can only read the store.
    work = _working_copy(shop, tmp_path / "work")
    result = run_scoring(_on_store(shop, work, s3_store), date=DATE)

    assert result.path == work.recommendations(DATE)
    got = _lists(result.path)
    assert got.drop("generated_at").equals(_lists(shop.first.path).drop("generated_at"))
    assert not (work.root / "features").exists()
    assert not (work.root / "models").exists()
    # Committed to the store too: pulled into an empty folder, the same partition.
    pulled = Layout(tmp_path / "pulled")
    s3_store.pull(pulled.root, ["recommendations", "reports"])
    partition = pulled.recommendations(DATE)
    assert {p.name for p in partition.iterdir()} == {"part-0.parquet", "_manifest.json"}
    assert _lists(partition).equals(got)
    manifest = json.loads(RecommendationPartition(partition).manifest.read_text(encoding="utf-8"))
    assert manifest == result.manifest
    assert ScoringReport(pulled.scoring_report(DATE).path).page.is_file()


def test_scoring_on_an_object_store_without_snapshots_says_how_to_push_them(
    shop: Shop, s3_store: DataStore, tmp_path: Path
) -> None:
    s3_store.push(shop.layout.root, ["models"])
    work = _working_copy(shop, tmp_path / "work")
    with pytest.raises(StageError, match=r"no feature snapshots at s3://.*--push features"):
        run_scoring(_on_store(shop, work, s3_store), date=DATE)
    assert not (work.root / "recommendations").exists()
