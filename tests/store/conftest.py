"""A tiny shop on disk with its feature snapshots, shared by the store tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from longtail.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
UNTIL = dt.date(2024, 1, 22)


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The tiny config on a fresh data dir, ingested, with snapshots up to UNTIL."""
    from longtail.features import write_features
    from longtail.ingest import run_ingest

    data = tmp_path_factory.mktemp("store") / "data" / "demo"
    cfg = load_config(REPO / "jobs" / "configs" / "tiny.toml", data_dir=data)
    run_ingest(cfg)
    write_features(cfg, until=UNTIL)
    return cfg
