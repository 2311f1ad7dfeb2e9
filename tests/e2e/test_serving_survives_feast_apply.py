"""After a scoring run, the Feast CLI on feature_repo/ keeps what the jobs registered."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from longtail import schema as S
from longtail.config import load_config
from longtail.scoring.serving import RECS_FEATURES
from longtail.store import feature_store
from tests.e2e.conftest import D2, REPO, TINY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FEAST = Path(sys.executable).with_name("feast")


def _feast(repo: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib"), "LONGTAIL_CONFIG": str(TINY)}
    done = subprocess.run(
        [str(FEAST), *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_feast_apply_and_materialize_after_scoring_keep_the_users_lists(two_days: Path) -> None:
    # As docs/features.md says: `cd feature_repo && PYTHONPATH=../lib feast apply`, on a
    # copy of the repo beside the run's data (its yaml points at ../data/demo).
    repo = two_days.parents[1] / "feature_repo"
    shutil.copytree(REPO / "feature_repo", repo, ignore=shutil.ignore_patterns("__pycache__"))
    _feast(repo, "apply")
    end = dt.datetime.combine(D2 + dt.timedelta(days=1), dt.time())
    _feast(repo, "materialize-incremental", end.isoformat())

    # The README's online read, on this run's config.
    store = feature_store(load_config(TINY, data_dir=two_days))
    partition = two_days / "recommendations" / f"date={D2}"
    recs = pl.read_parquet(partition / "*.parquet").sort(S.USER_ID, "rank")
    user = int(recs[S.USER_ID][0])
    got = store.get_online_features(
        features=RECS_FEATURES, entity_rows=[{S.USER_ID: user}]
    ).to_dict()
    wanted = recs.filter(pl.col(S.USER_ID) == user)[S.ITEM_ID].to_list()
    assert got["rec_items"] == [wanted]
    assert got["rec_date"] == [D2.isoformat()]
