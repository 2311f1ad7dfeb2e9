"""The jobs with an object-store data_dir: the sync round trip, and resample as a job."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from longtail.cli import run_main
from longtail.paths import Layout
from longtail.storage import DataStore
from longtail.synthetic import make_train_frame

REPO = Path(__file__).resolve().parents[1]


def _job(name: str) -> Callable[[Sequence[str] | None], int]:
    spec = importlib.util.spec_from_file_location(f"job_{name}", REPO / "jobs" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main: Callable[[Sequence[str] | None], int] = module.main
    return main


def _config(tmp_path: Path, store: DataStore, *, local: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f'data_dir = "{local}"\n[source]\nkind = "synthetic"\n'
        f'[storage]\nuri = "{store.uri}"\nendpoint_url = "{store.endpoint_url}"\n'
    )
    return path


def test_sync_job_pushes_and_pulls_a_data_directory(s3_store: DataStore, tmp_path: Path) -> None:
    here = Layout(tmp_path / "here")
    here.training.mkdir(parents=True)
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(here.split("train"))
    push = _config(tmp_path, s3_store, local=here.root)
    job = [sys.executable, str(REPO / "jobs" / "sync.py")]
    # The keys reach the job only through AWS_* (this session's environment).
    proc = subprocess.run(
        [*job, "--config", str(push), "--push"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert f"pushed 1 objects of training to {s3_store.uri}" in proc.stdout
    assert "longtail-test-secret" not in proc.stdout + proc.stderr

    there = tmp_path / "there"
    pull = _config(tmp_path, s3_store, local=there)
    proc = subprocess.run(
        [*job, "--config", str(pull), "--pull", "training"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (there / "training" / "train.parquet").read_bytes() == here.split("train").read_bytes()


@pytest.mark.integration
def test_resample_job_takes_an_s3_data_dir(
    ray_session: Any, s3_store: DataStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = io.BytesIO()
    make_train_frame(1_000, seed=3).write_parquet(buffer)
    s3_store.write_bytes(s3_store.layout.split("train"), buffer.getvalue())
    cfg = tmp_path / "c.toml"
    work = tmp_path / "work"
    cfg.write_text(
        '[source]\nkind = "synthetic"\n[resampling]\nstrategy = "random_under"\n'
        f'[storage]\nendpoint_url = "{s3_store.endpoint_url}"\nwork_dir = "{work}"\n'
    )
    argv = ["--config", str(cfg), "--data-dir", s3_store.uri]
    assert run_main(_job("resample"), argv) == 0
    assert s3_store.has_dataset(s3_store.layout.resampled_train("random_under"))
    assert s3_store.is_file(s3_store.layout.sampling_report("random_under"))
    assert '"after"' in capsys.readouterr().out
    assert not work.exists()
