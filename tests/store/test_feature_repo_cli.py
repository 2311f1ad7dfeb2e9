"""The feature repo from the CLI: apply, materialize, materialize-incremental, online reads."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import Config
from longtail.paths import Layout
from tests.services import redis_up, require

REPO = Path(__file__).resolve().parents[2]
UNTIL = dt.date(2024, 1, 22)  # as in conftest.py
pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEAST = Path(sys.executable).with_name("feast")


def _feast(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO / "lib"),
        LONGTAIL_CONFIG=str(REPO / "jobs" / "configs" / "tiny.toml"),
    )
    done = subprocess.run(
        [str(FEAST), *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _latest(cfg: Config, name: str, key: str, ids: list[int], feature: str) -> list[Any]:
    src = pl.read_parquet(Layout(cfg.data_dir).features / f"{name}_features.parquet")
    last = src.filter(pl.col(S.SNAPSHOT_TIME) == src[S.SNAPSHOT_TIME].max())
    by_id = dict(zip(last[key].to_list(), last[feature].to_list(), strict=True))
    return [by_id.get(i) for i in ids]


def test_cli_apply_then_materialize_then_online_features_match_the_latest_snapshot(
    tiny_cfg: Config,
) -> None:
    # The repo copy sits beside data/demo, so the checked-in relative paths work unchanged.
    repo = Path(tiny_cfg.data_dir).parents[1] / "feature_repo"
    shutil.copytree(REPO / "feature_repo", repo, ignore=shutil.ignore_patterns("__pycache__"))
    out = _feast(repo, "apply")
    assert "user_features" in out
    end = dt.datetime.combine(UNTIL, dt.time())
    _feast(repo, "materialize", (end - dt.timedelta(days=1)).isoformat(), end.isoformat())
    _feast(repo, "materialize-incremental", end.isoformat())

    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    users, items = [1, 2, 3], [4, 5, 6]
    got = store.get_online_features(
        features=store.get_feature_service("ranking_v1"),
        entity_rows=[{S.USER_ID: u, S.ITEM_ID: i} for u, i in zip(users, items, strict=True)],
    ).to_dict()
    assert got["user_views_30d"] == _latest(tiny_cfg, "user", S.USER_ID, users, "user_views_30d")
    assert got[S.POPULARITY_BUCKET] == _latest(
        tiny_cfg, "item", S.ITEM_ID, items, S.POPULARITY_BUCKET
    )
    assert got[S.USER_RECENT_ITEMS] == _latest(
        tiny_cfg, "user", S.USER_ID, users, S.USER_RECENT_ITEMS
    )


def test_redis_online_store_serves_what_was_materialized(tiny_cfg: Config) -> None:
    from longtail.store import apply_definitions, feature_store, materialize

    require(
        redis_up(),
        what="Redis on 127.0.0.1:6379",
        how="run `bash scripts/services.sh` (as root it installs redis-server)",
    )
    cfg = tiny_cfg.model_copy(
        update={
            "feature_store": tiny_cfg.feature_store.model_copy(
                update={
                    "online_store": "redis",
                    "redis_connection_string": "127.0.0.1:6379",
                    # A project of its own per run: the Redis server outlives test
                    # runs, and Feast keeps a stored row that is newer than a write.
                    "project": f"longtail_test_redis_{uuid.uuid4().hex[:12]}",
                }
            )
        }
    )
    store = feature_store(cfg)
    assert store.config.online_store.type == "redis"
    apply_definitions(store, cfg)
    materialize(store, end=dt.datetime.combine(UNTIL, dt.time(), tzinfo=dt.UTC))
    users = [7, 8]
    got = store.get_online_features(
        features=["user_features:user_views_30d"],
        entity_rows=[{S.USER_ID: u} for u in users],
    ).to_dict()
    assert got["user_views_30d"] == _latest(cfg, "user", S.USER_ID, users, "user_views_30d")


def test_repo_declares_every_object_the_jobs_register() -> None:
    # `feast apply` deletes registered objects its repo does not declare: a view the
    # jobs register but repo.py lacks (user_recommendations, once) vanishes from serving.
    import runpy

    from longtail.config import load_config
    from longtail.store.definitions import build_definitions

    tiny = REPO / "jobs" / "configs" / "tiny.toml"
    old = os.environ.get("LONGTAIL_CONFIG")
    os.environ["LONGTAIL_CONFIG"] = str(tiny)
    try:
        declared = runpy.run_path(str(REPO / "feature_repo" / "repo.py"))
    finally:
        if old is None:
            os.environ.pop("LONGTAIL_CONFIG")
        else:
            os.environ["LONGTAIL_CONFIG"] = old
    cfg = load_config(tiny)
    registered = build_definitions(cfg.features, service=cfg.feature_store.feature_service)
    in_repo = {(type(o).__name__, o.name) for o in declared.values() if hasattr(o, "name")}
    wanted = {(type(o).__name__, o.name) for o in registered.objects()}
    assert wanted <= in_repo, wanted - in_repo
