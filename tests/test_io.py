"""Atomic swaps: a reader sees the old or the new partition, never both, never none.

A child process writes a new recommendations partition over an old one and is
killed (SIGKILL) at each phase of the swap; the parent then reads the dataset
as a reader would, before and after the next job start (which takes the lock
and recovers).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import polars as pl
import pytest

from longtail.io import DEBRIS, atomic_dir, exchange, write_json, write_parquet
from longtail.locking import data_dir_lock
from longtail.scoring.output import write_partition

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[1]
DATE = "2024-01-20"
OLD_USERS, NEW_USERS = [1, 2], [1, 2, 3]

# Writes the partition for OLD_USERS, then for NEW_USERS with a kill at PHASE.
CHILD = textwrap.dedent("""
    import datetime as dt, os, signal, sys
    from pathlib import Path
    import polars as pl
    import longtail.io as lio
    from longtail.scoring.output import write_partition

    root, phase, users = Path(sys.argv[1]), sys.argv[2], [int(u) for u in sys.argv[3].split(",")]
    target = root / "recommendations" / "date=2024-01-20"

    def die(*_a, **_k):
        os.kill(os.getpid(), signal.SIGKILL)

    if phase == "writing":
        real_json = lio.write_json
        lio.write_json = lambda obj, path: (real_json(obj, path), die())
        import longtail.scoring.output as out
        out.write_json = lio.write_json
    elif phase == "before_swap":
        lio.exchange = die
    elif phase == "after_swap":
        real_exchange = lio.exchange
        lio.exchange = lambda a, b: (real_exchange(a, b), die())
    elif phase in {"between_renames", "fallback_after_swap"}:
        lio.exchange = lambda a, b: False  # a file system without RENAME_EXCHANGE
        real_replace = os.replace
        def replace(src, dst):
            real_replace(src, dst)
            if phase == "between_renames" and Path(src) == target:
                die()
            if phase == "fallback_after_swap" and Path(dst) == target:
                die()
        lio.os.replace = replace
    recs = pl.DataFrame({
        "user_id": users, "rank": [1] * len(users), "item_id": [100 + u for u in users],
        "score": [0.5] * len(users), "probability": [0.1] * len(users),
        "model_version": ["v"] * len(users), "strategy": ["none"] * len(users),
        "feature_service": ["ranking_v1"] * len(users),
        "generated_at": [dt.datetime(2024, 1, 20, tzinfo=dt.UTC)] * len(users),
    }).with_columns(pl.col("rank").cast(pl.UInt32))
    write_partition(recs, target, expected_users=pl.Series(users), k=3, manifest={},
                    staging=root / ".staging")
""")


def _write(root: Path, users: list[int], phase: str = "none") -> int:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), phase, ",".join(map(str, users))],
        env={**os.environ, "PYTHONPATH": str(REPO / "lib")}, capture_output=True, check=False,
    )  # fmt: skip
    return proc.returncode


def _read_users(root: Path) -> list[int]:
    """What a reader of the whole dataset sees (raises on a mixed or broken layout)."""
    frame = pl.scan_parquet(
        root / "recommendations" / "**" / "*.parquet", hive_partitioning=True
    ).collect()
    assert frame["date"].cast(pl.String).unique().to_list() == [DATE]
    return sorted(frame["user_id"].to_list())


def _debris(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if DEBRIS.match(p.name)]


@pytest.mark.parametrize(
    ("phase", "atomic", "after_recovery"),
    [
        ("writing", True, OLD_USERS),
        ("before_swap", True, OLD_USERS),
        ("after_swap", True, NEW_USERS),
        ("between_renames", False, NEW_USERS),  # the journal lets the next start finish it
        ("fallback_after_swap", True, NEW_USERS),
    ],
)
def test_a_kill_at_any_phase_of_the_swap_leaves_old_or_new_and_no_debris(
    tmp_path: Path, phase: str, atomic: bool, after_recovery: list[int]
) -> None:
    assert _write(tmp_path, OLD_USERS) == 0
    assert _write(tmp_path, NEW_USERS, phase) == -signal.SIGKILL
    if atomic:  # readers never need the recovery: the target is whole at every moment
        assert _read_users(tmp_path) in (OLD_USERS, NEW_USERS)
    with data_dir_lock(tmp_path, job="score"):  # the next job's start
        assert _read_users(tmp_path) == after_recovery
    assert _debris(tmp_path) == []
    assert {p.name for p in (tmp_path / "recommendations" / f"date={DATE}").iterdir()} == {
        "part-0.parquet",
        "_manifest.json",
    }


def test_a_reader_during_repeated_swaps_sees_old_or_new_each_time(tmp_path: Path) -> None:
    target = tmp_path / "recommendations" / f"date={DATE}"
    frames = {n: pl.DataFrame({"user_id": list(range(n))}) for n in (3, 5)}

    def swap_many() -> None:
        for i in range(60):
            with atomic_dir(target, staging=tmp_path / ".staging", keep_old=True) as tmp:
                frames[3 if i % 2 else 5].write_parquet(tmp / "part-0.parquet")
                if i % 2 == 0:  # versions differ in their files too: never both
                    frames[3].write_parquet(tmp / "part-1.parquet")

    def read_once() -> int:
        # Resolve the partition once (a folder descriptor), then read every file
        # through it: one version of the folder, whatever is swapped meanwhile.
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        try:
            rows = 0
            for name in sorted(os.listdir(fd)):
                if name.endswith(".parquet"):
                    with os.fdopen(os.open(name, os.O_RDONLY, dir_fd=fd), "rb") as fh:
                        rows += pl.read_parquet(io.BytesIO(fh.read())).height
            return rows
        finally:
            os.close(fd)

    swap_many()
    writer = threading.Thread(target=swap_many)
    writer.start()
    seen = []
    while writer.is_alive():
        seen.append(read_once())  # never a missing folder: os.open would raise
    writer.join()
    assert set(seen) <= {3, 8}
    assert len(seen) > 10
    # Replaced versions wait in the staging folder for the next job start.
    assert {p.parent for p in _debris(tmp_path)} == {tmp_path / ".staging"}
    with data_dir_lock(tmp_path, job="score"):
        assert _debris(tmp_path) == []


def test_exchange_swaps_two_folders_on_this_file_system(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    assert exchange(a, b), "this machine's file system should support RENAME_EXCHANGE"
    assert (a / "x").read_text() == "b"
    assert (b / "x").read_text() == "a"


def test_outputs_are_readable_by_other_users_under_the_usual_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = tmp_path / "recommendations" / f"date={DATE}"
        recs = pl.DataFrame(
            {
                "user_id": [1], "rank": [1], "item_id": [5], "score": [1.0],
                "probability": [0.5], "model_version": ["v"], "strategy": ["none"],
                "feature_service": ["f"],
                "generated_at": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)],
            }
        ).with_columns(pl.col("rank").cast(pl.UInt32))  # fmt: skip
        write_partition(recs, target, expected_users=pl.Series([1]), k=3, manifest={})
        json_path = write_json({"a": 1}, tmp_path / "reports" / "x.json")
        parquet_path = write_parquet(recs, tmp_path / "t.parquet")
        modes = {
            p: stat.S_IMODE(p.stat().st_mode)
            for p in [target, target / "_manifest.json", json_path, parquet_path]
        }
    finally:
        os.umask(old)
    assert modes == {
        target: 0o755,
        target / "_manifest.json": 0o644,
        json_path: 0o644,
        parquet_path: 0o644,
    }


def test_a_stricter_umask_is_respected(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        with atomic_dir(tmp_path / "private") as tmp:
            (tmp / "f").write_text("x")
        path = write_json({}, tmp_path / "private.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
