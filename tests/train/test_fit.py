"""Integration: real Ray Train runs on synthetic rows with a planted signal.

One resampled run (with a simulated worker crash) is shared by most assertions;
one shuffled-label run is the no-signal baseline.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from longtail.config import Config, config_from_dict
from longtail.errors import StageError
from longtail.models import load_model
from longtail.paths import Layout
from longtail.synthetic import make_training_rows, write_splits
from longtail.train import TrainResult, fit
from longtail.train.worker import DirectRead
from tests.train.undersampled import write_undersampled

pytestmark = pytest.mark.integration

NEGATIVE_RATE = {"head": 0.15, "torso": 0.3, "tail": 0.6}


def _cfg(**train: Any) -> Config:
    base = {
        "epochs": 3,
        "batch_size": 256,
        "hash_buckets_user": 2_000,
        "hash_buckets_item": 2_000,
        "shuffle_buffer_rows": 2_000,
        "early_stopping_patience": 3,
    }
    return config_from_dict({"seed": 11, "train": {**base, **train}})


@dataclass
class Run:
    layout: Layout
    result: TrainResult


@pytest.fixture(scope="module")
def resampled_run(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Run:
    layout = Layout(tmp_path_factory.mktemp("fit"))
    write_splits(layout, make_training_rows(n_rows=20_000, seed=5))
    write_undersampled(layout, strategy="undersample", negative_rate=NEGATIVE_RATE)
    # A crash and a restart need Ray Train's worker actors, not the driver's process.
    result = fit(
        layout,
        _cfg(sequence_length=5, in_process=False),
        strategy="undersample",
        version="v-resampled",
        simulate_failure_at_epoch=1,
    )
    return Run(layout, result)


@pytest.fixture(scope="module")
def shuffled_run(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Run:
    layout = Layout(tmp_path_factory.mktemp("shuffled"))
    rows = make_training_rows(n_rows=20_000, seed=5, recent_items=0)
    is_train = pl.col("split") == "train"
    shuffled = rows.with_columns(
        pl.when(is_train).then(pl.col("label").shuffle(seed=3)).otherwise(pl.col("label"))
    )
    write_splits(layout, shuffled)
    # Streams the split from Ray Data (the path above [train] cache_train_rows).
    result = fit(layout, _cfg(epochs=2, cache_train_rows=0), strategy="none", version="v-shuffled")
    return Run(layout, result)


def _metric(result: TrainResult, split: str, scope: str, name: str) -> float:
    row = result.metrics.filter((pl.col("split") == split) & (pl.col("scope") == scope))
    return float(row[name].item())


def test_model_learns_the_planted_signal(resampled_run: Run, shuffled_run: Run) -> None:
    learned = _metric(resampled_run.result, "validation", "all", "roc_auc")
    baseline = _metric(shuffled_run.result, "validation", "all", "roc_auc")
    assert learned > 0.7
    assert learned > baseline + 0.1


def test_run_resumes_from_last_checkpoint_after_a_worker_crash(resampled_run: Run) -> None:
    result = resampled_run.result
    assert result.restarts == 1
    assert [h["epoch"] for h in result.history] == [1.0, 2.0, 3.0]
    # Epoch 1 ran before the crash, epochs 2-3 after the restore.
    assert [h["restarts"] for h in result.history] == [0.0, 1.0, 1.0]
    # Once the run is done its folder goes: no later fit can resume from it.
    runs = resampled_run.layout.models / "_ray_runs"
    assert not [p for p in runs.iterdir() if p.name.startswith("v-resampled")]


def test_calibration_lowers_test_ece_of_a_resampled_model(resampled_run: Run) -> None:
    result = resampled_run.result
    assert result.calibration.offset_by == "item_popularity_bucket"
    assert result.calibration.method == _cfg().train.calibration == "platt"
    calibrated = _metric(result, "test", "all", "ece")
    uncalibrated = _metric(result, "test", "all", "ece_uncalibrated")
    assert calibrated < uncalibrated / 2


def test_metrics_cover_overall_and_each_bucket_on_untouched_splits(resampled_run: Run) -> None:
    m = resampled_run.result.metrics
    assert m.select("split", "scope").rows() == [
        (s, b) for s in ("validation", "test") for b in ("all", "head", "torso", "tail")
    ]
    test_rows = pl.read_parquet(resampled_run.layout.training / "test.parquet").height
    assert _metric(resampled_run.result, "test", "all", "rows") == test_rows
    ranking = resampled_run.result.ranking
    assert {"recall@10", "ndcg@10", "map@10", "coverage@10", "tail_share@10"} <= set(
        ranking.columns
    )


def test_saved_model_reloads_and_scores_like_the_trainer(resampled_run: Run) -> None:
    layout = resampled_run.layout
    current = json.loads((layout.models / "current.json").read_text())
    assert current["version"] == "v-resampled"
    loaded = load_model(layout.models)
    manifest = loaded.manifest
    assert manifest.strategy == "undersample"
    assert manifest.loss == "bce"
    assert manifest.features["sequence_length"] == 5
    assert manifest.calibration["offsets"]["head"] > manifest.calibration["offsets"]["tail"]
    assert manifest.data_window is not None
    assert set(manifest.data_window) == {"train", "validation", "test"}
    assert manifest.metrics == resampled_run.result.metrics.to_dicts()
    test = pl.read_parquet(layout.training / "test.parquet")
    with torch.inference_mode():
        pred = loaded.predict(test)
    scored = test.with_columns(pl.Series("probability", pred.probabilities))
    from longtail.metrics import ece

    assert ece(scored) == pytest.approx(_metric(resampled_run.result, "test", "all", "ece"))


def test_strategy_without_resampled_folder_trains_on_plain_split(shuffled_run: Run) -> None:
    loaded = load_model(shuffled_run.layout.models / "v-shuffled")
    assert loaded.manifest.strategy == "none"
    assert loaded.calibration.offsets == {"*": 0.0}


def test_a_refit_with_another_config_under_the_same_version_trains_a_new_model(
    shuffled_run: Run,
) -> None:
    layout = shuffled_run.layout
    folder = layout.models / "v-shuffled"
    before = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    # A crashed run of yet another config, left behind: must not be resumed.
    stale = layout.models / "_ray_runs" / "v-shuffled.deadbeef0000"
    stale.mkdir(parents=True)
    cfg = _cfg(epochs=2, learning_rate=1e-2, embedding_dim=8)
    result = fit(layout, cfg, strategy="none", version="v-shuffled")
    assert result.restarts == 0
    assert [h["epoch"] for h in result.history] == [1.0, 2.0]  # trained, not resumed
    assert not stale.exists()
    after = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert after != before
    loaded = load_model(folder)
    assert loaded.manifest.train_config["learning_rate"] == 1e-2
    assert loaded.manifest.train_config["embedding_dim"] == 8
    dims = {m.embedding_dim for m in loaded.module.modules() if isinstance(m, torch.nn.Embedding)}
    assert dims == {8}


def test_training_in_the_drivers_process_gives_the_weights_of_a_ray_train_worker(
    resampled_run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = resampled_run.layout
    threads = torch.get_num_threads()
    # Who starts the direct read in this process: in the driver's process the driver
    # does, before Ray Train's set-up (a worker actor starts its own, elsewhere).
    started: list[str] = []
    start = DirectRead.start

    def recorded(self: DirectRead, **kwargs: Any) -> Any:
        started.append(sys._getframe(1).f_globals["__name__"])
        return start(self, **kwargs)

    monkeypatch.setattr(DirectRead, "start", recorded)
    runs = {
        where: fit(layout, _cfg(epochs=2, in_process=where == "driver"), version=f"v-{where}")
        for where in ("driver", "worker")
    }
    assert started == ["longtail.train.driver"]
    assert runs["driver"].resources["in_process"] is True
    assert runs["worker"].resources["in_process"] is False
    losses = {w: [h["train_loss"] for h in r.history] for w, r in runs.items()}
    assert losses["driver"] == losses["worker"] and len(losses["driver"]) == 2
    weights = {w: load_file(str(r.path / "model.safetensors")) for w, r in runs.items()}
    assert weights["driver"].keys() == weights["worker"].keys()
    for name, tensor in weights["driver"].items():
        assert torch.equal(tensor, weights["worker"][name]), name
    # The rest of the saved model is the same bits too: spec, calibration, metrics.
    volatile = {"created_at", "version", "history", "resources"}
    manifests = {
        w: {k: v for k, v in json.loads((r.path / "manifest.json").read_text()).items()
            if k not in volatile}
        for w, r in runs.items()
    }  # fmt: skip
    for manifest in manifests.values():
        manifest["train_config"].pop("in_process")  # what differs, by design
    assert manifests["driver"] == manifests["worker"]
    # No Ray Train run folder is left by either, and the driver's threads are as they were.
    assert not list((layout.models / "_ray_runs").glob("v-driver*"))
    assert not list((layout.models / "_ray_runs").glob("v-worker*"))
    assert torch.get_num_threads() == threads


def test_a_simulated_crash_in_the_drivers_process_is_refused(resampled_run: Run) -> None:
    with pytest.raises(StageError, match="in_process = false"):
        fit(
            resampled_run.layout,
            _cfg(epochs=1, in_process=True),
            version="v-refused",
            simulate_failure_at_epoch=1,
        )


_FIT_WITHOUT_RAY = """
import json, sys
from pathlib import Path
import ray
from longtail.config import config_from_dict
from longtail.paths import Layout
from longtail.synthetic import make_training_rows, write_splits
from longtail.train import fit
layout = Layout(Path(sys.argv[1]))
write_splits(layout, make_training_rows(n_rows=3_000, seed=5))
train = {"epochs": 1, "batch_size": 256, "hash_buckets_user": 500, "hash_buckets_item": 500}
seen = {}
for name, extra in (("direct", {}), ("ray_data", {"cache_train_rows": 0})):
    cfg = config_from_dict({"seed": 11, "train": {**train, **extra}})
    result = fit(layout, cfg, strategy="none", version="v-" + name)
    gcs = ray.get_runtime_context().gcs_address if ray.is_initialized() else None
    seen[name] = [result.resources["in_process"], gcs]
print(json.dumps(seen))
ray.shutdown()
"""


@pytest.mark.slow
def test_a_fit_in_the_drivers_process_reading_the_files_starts_no_ray(tmp_path: Path) -> None:
    # A fresh interpreter with no Ray running: the direct read in Ray Train's local
    # mode trains without one; Ray Data (above cache_train_rows) starts the project's.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "lib")
    proc = subprocess.run(
        [sys.executable, "-c", _FIT_WITHOUT_RAY, str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["direct"] == [True, None]
    in_process, gcs = seen["ray_data"]
    assert in_process is True and gcs.startswith("127.0.0.1:")  # ensure_ray's loopback Ray
