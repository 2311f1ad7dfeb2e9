"""Integration: a real Ray Tune run on tiny synthetic splits, and everything it writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow.fs as pafs
import pytest

from longtail.artifacts import TunedBest
from longtail.config import Config, StorageConfig, config_from_dict
from longtail.errors import ConfigError, StageError
from longtail.models import load_model
from longtail.paths import MODEL_MANIFEST, Layout, TuneRun
from longtail.storage import DataStore
from longtail.synthetic import make_training_rows, write_splits
from longtail.tune import TuneResult, apply_best, load_best, run_tune
from longtail.tune.leaderboard import LEADERBOARD_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cfg() -> Config:
    return config_from_dict(
        {
            "seed": 4,
            "train": {"epochs": 2, "batch_size": 256, "hash_buckets_user": 1_000,
                      "hash_buckets_item": 1_000},
            "tune": {"num_samples": 2, "seeds": 2, "draws": 1, "time_budget_s": 300,
                     "bootstrap_samples": 50, "strategies": ["random_under", "random_over"],
                     "max_relative_ece": 10.0, "min_log_loss_skill": -1.0,
                     "min_brier_skill": -1.0, "embedding_dims": [8]},
        }
    )  # fmt: skip


@dataclass
class Run:
    layout: Layout
    cfg: Config
    result: TuneResult


@pytest.fixture(scope="module")
def tuned(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Run:
    layout = Layout(tmp_path_factory.mktemp("tune"))
    write_splits(layout, make_training_rows(n_rows=6_000, seed=1))
    cfg = _cfg()
    return Run(layout, cfg, run_tune(layout, cfg, run_id="run-1"))


def test_run_writes_leaderboard_as_parquet_and_csv_with_every_trial(tuned: Run) -> None:
    run = tuned.layout.tune_run("run-1")
    board = pl.read_parquet(run.leaderboard("parquet"))
    csv = pl.read_csv(run.leaderboard("csv"))
    # 2 configurations x 1 draw x 2 seeds.
    assert board.height == csv.height == 4
    assert set(LEADERBOARD_COLUMNS) <= set(board.columns)
    configs = pl.read_csv(run.configurations("csv"))
    assert configs.height == 2 and configs["seeds"].to_list() == [2, 2]
    assert csv.columns == board.columns
    assert set(board["strategy"]) <= {"none", "random_under", "random_over"}
    # Ray's resumable state (pickles) is dropped; the run keeps JSON, Parquet, safetensors.
    assert not (tuned.layout.tune / "_ray" / "run-1").exists()
    assert not [p for p in run.path.rglob("*") if p.suffix in {".pkl", ".pickle"}]


def test_baseline_is_always_a_trial(tuned: Run) -> None:
    board = tuned.result.leaderboard
    base = board.filter(pl.col("is_baseline"))
    assert base.height == 2 and sorted(base["seed"]) == [4, 5]
    row = base.row(0, named=True)
    assert (row["strategy"], row["loss"]) == ("none", "bce")
    assert row["learning_rate"] == pytest.approx(tuned.cfg.train.learning_rate)
    # FIFO: every trial, the baseline's like any other, runs its epochs.
    assert (board["epochs_run"] == tuned.cfg.train.epochs).all()
    configs = tuned.result.comparison.configurations
    assert configs.filter(pl.col("is_baseline"))["test_objective"].item() is not None


def test_best_config_is_saved_for_the_daily_job(tuned: Run) -> None:
    best = load_best(tuned.layout)
    assert best is not None and best == tuned.result.best
    winner = tuned.result.comparison.configurations.filter(pl.col("rank") == 1).row(0, named=True)
    assert best.label == winner["label"] and best.seeds == 2
    assert best.objective_value == pytest.approx(winner["objective"])
    trial = tuned.result.leaderboard.filter(pl.col("trial_id") == best.trial_id)
    assert trial["label"].item() == winner["label"] and trial["selected"].item()
    assert best.run_id == "run-1"
    cfg = apply_best(tuned.cfg, best)
    assert cfg.resampling.strategy == best.strategy
    assert cfg.train.loss == best.loss
    assert cfg.train.embedding_dim == best.embedding_dim
    model = load_model(tuned.layout.tune / best.model_path)
    assert model.manifest.strategy == best.strategy


def test_latest_points_at_the_run_with_its_report(tuned: Run) -> None:
    latest = tuned.layout.tune_latest
    assert latest.report.is_file()
    assert json.loads(latest.summary.read_text())["run_id"] == "run-1"
    text = latest.report.read_text()
    for heading in ("Verdict", "which hurt", "PR curves", "Reliability", "Head / torso / tail",
                    "training time"):  # fmt: skip
        assert heading in text
    assert text.count("<img") >= 4
    assert tuned.result.comparison.verdict in latest.verdict.read_text()


def test_a_second_run_with_the_same_id_is_refused(tuned: Run) -> None:
    with pytest.raises(StageError, match="exists already"):
        run_tune(tuned.layout, tuned.cfg, run_id="run-1")


def test_a_bad_strategy_fails_before_ray_work(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="nope"):
        run_tune(Layout(tmp_path), config_from_dict({"tune": {"strategies": ["nope"]}}), run_id="x")


def test_load_best_is_none_before_any_run_and_refuses_a_broken_file(tmp_path: Any) -> None:
    layout = Layout(tmp_path)
    assert load_best(layout) is None
    layout.tune.mkdir(parents=True)
    layout.tune_best.write_text('{"strategy": "smote"}')
    with pytest.raises(StageError, match="lacks key"):
        load_best(layout)


def test_finish_judges_a_stopped_search_from_the_trials_on_disk(tuned: Run) -> None:
    import shutil

    # A search that stopped after its trials wrote their records (a killed process,
    # or Ray's memory monitor killing a trial actor) leaves only trials/ behind.
    stopped = tuned.layout.tune_run("run-stopped")
    shutil.copytree(TuneRun(tuned.result.run_dir).trials, stopped.trials)
    result = run_tune(tuned.layout, tuned.cfg, run_id="run-stopped", finish=True)
    assert result.comparison.verdict == tuned.result.comparison.verdict
    assert result.leaderboard.height == tuned.result.leaderboard.height
    assert stopped.verdict.is_file() and stopped.report.is_file()
    with pytest.raises(StageError, match="no trials to finish"):
        run_tune(tuned.layout, tuned.cfg, run_id="never-ran", finish=True)


def _objectives(board: pl.DataFrame) -> pl.DataFrame:
    cols = ["label", "seed", "epochs_run", "objective", "test_pr_auc", "test_recall_at_k"]
    return board.select(cols).sort("label", "seed")


def test_tune_on_an_object_store_runs_the_trials_of_a_local_run(
    tuned: Run, s3_store: DataStore, tmp_path: Any
) -> None:
    # The same splits, only in the bucket; the working copy starts empty.
    s3_store.push(tuned.layout.root, ["training"])
    work = Layout(tmp_path / "work")
    storage = StorageConfig(uri=s3_store.uri, endpoint_url=s3_store.endpoint_url)
    cfg = tuned.cfg.model_copy(update={"data_dir": work.root, "storage": storage})
    result = run_tune(work, cfg, run_id="run-s3")

    assert _objectives(result.leaderboard).equals(_objectives(tuned.result.leaderboard))
    assert result.best is not None and result.best.label == tuned.result.best.label  # type: ignore[union-attr]
    # Every trial uploaded its record and model: the driver judged what it pulled.
    run = s3_store.layout.tune_run("run-s3")
    for trial_id in result.leaderboard["trial_id"]:
        assert s3_store.is_file(run.trial(trial_id).record)
        assert s3_store.is_file(run.trial(trial_id).model / MODEL_MANIFEST)
    # The judged run and best.json are committed; the cache and Ray's state are gone.
    assert s3_store.is_file(run.leaderboard("parquet"))
    assert s3_store.read_artifact(TunedBest, s3_store.layout.tune_best) == result.best
    stored = {i.path for i in s3_store.filesystem.get_file_info(
        pafs.FileSelector(str(s3_store.layout.tune), recursive=True))}  # fmt: skip
    assert not [p for p in stored if "/cache/" in p or "/_ray/" in p]
    assert not (work.root / "training").exists()
