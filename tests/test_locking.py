"""The data-directory lock: one holder per data dir, a clear refusal, cleanup at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from longtail.locking import DataDirError, data_dir_lock
from longtail.paths import Layout

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "jobs" / "configs" / "tiny.toml"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "lib")}


def _lock_in_child(root: Path, *, job: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(f"""
        from pathlib import Path
        from longtail.locking import LockHeld, data_dir_lock
        try:
            with data_dir_lock(Path({str(root)!r}), job={job!r}):
                print("acquired")
        except LockHeld as exc:
            print(f"refused: {{exc}}")
    """)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True
    )


def test_a_second_process_is_refused_and_told_who_holds_the_lock(tmp_path: Path) -> None:
    with data_dir_lock(tmp_path, job="daily"):
        out = _lock_in_child(tmp_path, job="score").stdout
    assert out.startswith(f"refused: data dir {tmp_path} is locked by another run")
    assert f"daily, pid {os.getpid()}" in out
    assert "score refused" in out
    assert _lock_in_child(tmp_path, job="score").stdout.strip() == "acquired"


def test_the_lock_goes_with_a_killed_holder(tmp_path: Path) -> None:
    code = (
        "import sys, time\nfrom longtail.locking import data_dir_lock\n"
        f"with data_dir_lock({str(tmp_path)!r}, job='train'):\n"
        "    print('held', flush=True)\n    time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_env()
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    assert _lock_in_child(tmp_path, job="daily").stdout.startswith("refused")
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert _lock_in_child(tmp_path, job="daily").stdout.strip() == "acquired"


def test_the_same_process_reenters_its_own_lock(tmp_path: Path) -> None:
    with data_dir_lock(tmp_path, job="backtest"), data_dir_lock(Layout(tmp_path), job="daily"):
        assert _lock_in_child(tmp_path, job="x").stdout.startswith("refused")
    assert _lock_in_child(tmp_path, job="x").stdout.strip() == "acquired"


def test_taking_the_lock_removes_leftovers_of_dead_runs_only(tmp_path: Path) -> None:
    debris = [
        tmp_path / ".canonical.tmp-abcd1234",
        tmp_path / "recommendations" / ".date=2024-01-20.tmp-x1y2z3w4",
        tmp_path / "reports" / "validation" / "date=2024-01-20" / ".all.tmp-q1w2e3r4",
        tmp_path / ".staging" / ".date=2024-01-21.old-k9k9k9k9",
    ]
    for folder in debris:
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "part-0.parquet").write_bytes(b"x")
    tmp_file = tmp_path / "reports" / ".ingest_summary.json.a1b2c3d4.tmp"
    tmp_file.write_text("{")
    kept = [tmp_path / "canonical" / "events.parquet", tmp_path / "reports" / ".keep.json"]
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("k")
    with data_dir_lock(tmp_path, job="daily"):
        pass
    assert not any(p.exists() for p in [*debris, tmp_file])
    assert all(p.exists() for p in kept)


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("not a folder")
    with pytest.raises(DataDirError, match="is a file, not a folder"), data_dir_lock(path, job="x"):
        pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_data_dir_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(DataDirError, match="not writable"), data_dir_lock(tmp_path, job="x"):
            pass
    finally:
        tmp_path.chmod(0o755)


def _ingest(data: Path, config: Path = TINY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / "ingest.py"), "--config", str(config),
         "--data-dir", str(data)],
        capture_output=True, text=True, env=_env(), cwd=REPO, check=False, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_ingest_is_refused_while_a_daily_run_holds_the_lock(tmp_path: Path) -> None:
    canonical = tmp_path / "canonical"
    canonical.mkdir()
    (canonical / "events.parquet").write_bytes(b"gated data")
    with data_dir_lock(tmp_path, job="daily"):
        started = time.perf_counter()
        proc = _ingest(tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == (
        f"error: data dir {tmp_path} is locked by another run "
        f"(daily, pid {os.getpid()} on {os.uname().nodename}, since "
        + lines[-1].split(", since ")[1]
    )
    assert "ingest refused" in lines[-1]
    assert "Traceback" not in proc.stderr
    assert (canonical / "events.parquet").read_bytes() == b"gated data"
    assert time.perf_counter() - started < 120


def test_a_data_dir_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("x")
    proc = _ingest(path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"error: data dir {path} is a file, not a folder"
