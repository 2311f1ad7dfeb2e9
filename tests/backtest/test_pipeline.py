"""The backtest job end to end on the tiny shop: point-in-time safe, live outputs untouched."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from longtail import schema as S
from longtail.backtest import backtest_cutoff
from longtail.config import load_config
from longtail.paths import Layout

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "configs" / "tiny.toml"
DAY = dt.date(2024, 1, 21)  # the tiny shop's last day
CUTOFF = backtest_cutoff(DAY, holdout_days=3)


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("backtest")
    proc = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "backtest.py"), "--config", str(TINY),
         "--data-dir", str(data), "--holdout-days", "3"],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report:" in proc.stdout
    return data


def test_cutoff_is_the_start_of_the_holdout_days() -> None:
    assert dt.datetime(2024, 1, 19, tzinfo=dt.UTC) == CUTOFF


def test_backtest_never_reads_events_after_the_cutoff(backtest: Path) -> None:
    work = Layout(Layout(backtest).backtest_run(DAY).work)
    events = pl.read_parquet(work.table("events"))
    assert events[S.EVENT_TIME].max() < CUTOFF
    items = pl.read_parquet(work.feature_table("item_features"))
    assert items[S.SNAPSHOT_TIME].max() <= CUTOFF
    horizon = dt.timedelta(hours=load_config(TINY).labels.horizon_hours)
    for split in S.SPLITS:
        rows = pl.read_parquet(work.split(split))
        assert (rows[S.EVENT_TIME].max() + horizon) <= CUTOFF
    lists = pl.read_parquet(work.recommendations(DAY - dt.timedelta(days=3)) / "*.parquet")
    assert lists.height > 0


def test_backtest_writes_metrics_for_every_system_on_the_same_users(backtest: Path) -> None:
    run = Layout(backtest).backtest_run(DAY)
    m = json.loads(run.metrics.read_text())
    for key in ("date", "cutoff", "holdout_days", "k", "target_event", "users_evaluated",
                "target_pairs", "systems", "candidate_recall", "vs_baseline"):  # fmt: skip
        assert key in m
    assert m["cutoff"] == CUTOFF.isoformat()
    assert set(m["systems"]) == {"model", "popular", "category_popular", "recent", "random"}
    for values in m["systems"].values():
        for metric in ("recall_at_k", "ndcg_at_k", "hit_rate_at_k", "map_at_k",
                       "tail_recall_at_k", "catalog_coverage", "aplt", "arp",
                       "exposure_gini", "novelty"):  # fmt: skip
            assert metric in values
    for name in ("popular", "category_popular", "recent", "random"):
        for metric in ("recall_at_k", "ndcg_at_k"):
            iv = m["vs_baseline"][name][metric]
            assert iv["low"] <= iv["diff"] <= iv["high"]
    per_user = pl.read_parquet(run.per_user)
    counts = per_user.group_by("system").len()["len"].unique().to_list()
    assert counts == [m["users_evaluated"]]
    assert 0 < m["candidate_recall"]["all"] <= 1
    html = run.report.read_text()
    assert "Verdict" in html and "recall@20" in html
    assert "http://" not in html and "https://" not in html


def test_backtest_leaves_the_live_outputs_alone(backtest: Path) -> None:
    # No live ingest existed: the backtest ingested into its own folder only.
    assert not (backtest / "canonical").exists()
    assert not (backtest / "models").exists()
    assert not (backtest / "recommendations").exists()


def test_backtest_report_renders_in_headless_chromium(backtest: Path, tmp_path: Path) -> None:
    from tests.services import chromium

    report = Layout(backtest).backtest_run(DAY).report
    flags = (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    )  # fmt: skip
    dom = subprocess.run(
        [chromium(), *flags, "--dump-dom", report.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout  # fmt: skip
    for text in ('id="headline"', "model recall@20", "Model minus each baseline", "<img"):
        assert text in dom
