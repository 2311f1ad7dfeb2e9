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


def _generic_cfg(tmp_path: Path, events: Path) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[source]\nkind = "generic"\nevents = "{events}"\n'
        '[source.columns]\nuser_id = "u"\nitem_id = "i"\nevent_type = "e"\nevent_time = "t"\n'
        '[source.event_names]\nview = ["pv"]\n'
    )
    return cfg


def _write_case(tmp_path: Path, case: str) -> Path:
    rows = [(1, 10, "pv", 1714521600 + 60 * k) for k in range(5)]
    text = "u,i,e,t\n" + "".join(f"{u},{i},{e},{t}\n" for u, i, e, t in rows)
    if case == "duplicate_header":
        path = tmp_path / "e.csv"
        path.write_text(text.replace("u,i,e,t", "u,i,e,t,t"))
    elif case == "utf16":
        path = tmp_path / "e.csv"
        path.write_bytes(text.encode("utf-16"))
    elif case == "list_column":
        import polars as pl

        path = tmp_path / "e.parquet"
        pl.DataFrame({"u": [1], "i": [[10, 11]], "e": ["pv"], "t": [1714521600]}).write_parquet(
            path
        )
    else:  # milliseconds read as seconds
        path = tmp_path / "e.csv"
        path.write_text("u,i,e,t\n" + "".join(f"{u},{i},{e},{t * 1000}\n" for u, i, e, t in rows))
    return path


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("duplicate_header", "repeats column name(s) ['t']"),
        ("utf16", "UTF-16"),
        ("list_column", "column 'i' has type List"),
        ("unit", 'set source.event_time.unit = "ms"'),
    ],
)
def test_a_file_level_problem_stops_with_one_line_and_exit_2(
    tmp_path: Path, case: str, says: str
) -> None:
    events = _write_case(tmp_path, case)
    proc = _run("--config", str(_generic_cfg(tmp_path, events)), "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and events.name in last and says in last


def test_one_garbage_row_of_each_kind_is_quarantined_and_the_job_succeeds(tmp_path: Path) -> None:
    events = tmp_path / "e.csv"
    good = "".join(f"1,10,pv,{1714521600 + 60 * k}\n" for k in range(5))
    garbage = [
        b"2,10,pv,99999999999999",
        b"2,10,pv,1e300",
        b"2,10,pv,-100000",
        b"2,1\xff0,pv,1714521600",
        b'2,10,pv,"1714521600',
    ]
    events.write_bytes(b"u,i,e,t\n" + good.encode() + b"\n".join(garbage) + b"\n")
    proc = _run("--config", str(_generic_cfg(tmp_path, events)), "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "d" / "reports" / "ingest_summary.json").read_text())
    assert summary["accepted"] == 5
    assert summary["quarantined"] == {
        "invalid_utf8": 1,
        "timestamp_out_of_range": 3,
        "wrong_field_count": 1,  # the unterminated quote
    }
    assert summary["rows_read"] == summary["accepted"] + sum(summary["quarantined"].values())
