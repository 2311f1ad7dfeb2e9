from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from longtail.paths import Layout

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
SHOP = '[source]\nkind = "synthetic"\nn_users = 300\nn_items = 200\ndays = 10\n'


def _run(job: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib")}
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / job), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    (root / "c.toml").write_text(SHOP)
    proc = _run("ingest.py", "--config", str(root / "c.toml"), "--data-dir", str(root / "d"))
    assert proc.returncode == 0, proc.stderr
    return root


def test_job_passes_after_ingest_and_lists_what_it_skipped(ingested: Path, tmp_path: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(ingested / "d", data)
    proc = _run("validate.py", "--config", str(ingested / "c.toml"), "--data-dir", str(data))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validation gate PASSED" in proc.stdout
    assert "skipped: user_features" in proc.stdout
    assert Layout(data).data_docs("all").index.is_file()


def test_job_exits_1_when_no_purchase_and_says_label_rate_out_of_bounds(
    ingested: Path, tmp_path: Path
) -> None:
    data = tmp_path / "d"
    shutil.copytree(ingested / "d", data)
    events = Layout(data).table("events")
    pl.read_parquet(events).filter(pl.col("event_type") != "purchase").write_parquet(events)
    proc = _run("validate.py", "--config", str(ingested / "c.toml"), "--data-dir", str(data))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "events_label_rate" in x)
    assert line.strip().startswith("CRITICAL imbalance")
    assert "label rate out of bounds: observed 0, bound [0.002, 0.2]" in line


def test_job_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[validation]\nlabel_rate_min = 0.3\nlabel_rate_max = 0.1\n")
    proc = _run("validate.py", "--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert "label_rate_min" in proc.stderr
