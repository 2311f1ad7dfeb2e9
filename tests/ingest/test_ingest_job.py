from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / "ingest.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def test_ingest_job_writes_canonical_tables_and_summary(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[source]\nkind = "synthetic"\nn_users = 200\nn_items = 150\ndays = 5\n')
    proc = _run("--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "d" / "reports" / "ingest_summary.json").read_text())
    assert summary["rows_read"] == summary["accepted"] > 0
    for table in ("events", "items", "categories"):
        assert (tmp_path / "d" / "canonical" / f"{table}.parquet").is_file()


def test_missing_file_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[source]\nkind = "generic"\nevents = "nowhere.csv"\n'
        "[source.columns]\nuser_id = 1\nitem_id = 2\nevent_type = 3\nevent_time = 4\n"
    )
    proc = _run("--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "nowhere.csv" in proc.stderr.strip().splitlines()[-1]


def test_missing_column_stops_naming_file_and_column(tmp_path: Path) -> None:
    events = tmp_path / "e.csv"
    events.write_text("user,item,kind\n1,2,view\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[source]\nkind = "generic"\nevents = "{events}"\n'
        '[source.columns]\nuser_id = "user"\nitem_id = "item"\n'
        'event_type = "kind"\nevent_time = "ts"\n'
    )
    proc = _run("--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "e.csv" in last and "'ts'" in last
    assert "Traceback" not in proc.stderr


def test_bad_config_value_stops_with_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[source]\nkind = "synthetic"\ndays = 0\n')
    proc = _run("--config", str(cfg))
    assert proc.returncode == 2
    assert "source.days" in proc.stderr
