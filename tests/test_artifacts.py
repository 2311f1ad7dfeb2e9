"""Typed artifacts: what one stage writes and another reads, at the paths Layout names."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from longtail.artifacts import BacktestMetrics, CurrentModel, LastTrained, TunedBest
from longtail.errors import StageError
from longtail.models.calibration import Calibration, offsets_from_report
from longtail.paths import Checkpoint, Layout, dataset_part
from longtail.prior import row_offsets, with_fallback
from longtail.resampling import ClassCounts, SamplingReport
from longtail.schema import POPULARITY_BUCKET

pytestmark = pytest.mark.unit

_BEST = {
    "strategy": "smote",
    "strategy_params": {},
    "loss": "focal",
    "loss_params": {"gamma": 2.0},
    "learning_rate": 0.003,
    "embedding_dim": 16,
    "objective": "pr_auc",
    "objective_value": 0.31,
    "run_id": "r1",
}


def test_layout_names_every_artifact_under_the_data_dir(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    day = dt.date(2024, 2, 14)
    assert layout.split("train") == tmp_path / "training" / "train.parquet"
    assert layout.sampling_report("smote") == tmp_path / "resampled/smote/sampling_report.json"
    assert layout.resampled_train("smote") == tmp_path / "resampled" / "smote" / "train"
    assert layout.current_model == tmp_path / "models" / "current.json"
    assert layout.model_manifest("v1") == tmp_path / "models" / "v1" / "manifest.json"
    assert layout.last_trained == tmp_path / "models" / "last_trained.json"
    assert layout.tune_best == tmp_path / "tune" / "best.json"
    assert layout.backtest_metrics(day) == tmp_path / "backtest/date=2024-02-14/metrics.json"
    assert layout.feature_table("user_features") == tmp_path / "features/user_features.parquet"


def test_layout_names_the_files_of_every_stage_folder(tmp_path: Path) -> None:
    # The on-disk names are the contract with readers outside the code (serving, the
    # runs of earlier versions, people): every accessor of a folder's files, pinned.
    layout = Layout(tmp_path)
    day = dt.date(2024, 2, 14)
    backtest = layout.backtest_run(day)
    assert backtest.path == layout.backtest(day) == tmp_path / "backtest" / "date=2024-02-14"
    assert [p.relative_to(backtest.path).as_posix() for p in (
        backtest.metrics, backtest.report, backtest.lists, backtest.per_user, backtest.work
    )] == ["metrics.json", "report.html", "lists.parquet", "per_user.parquet", "work"]  # fmt: skip
    run = layout.tune_run("r1")
    assert run.path == tmp_path / "tune" / "r1"
    assert [p.relative_to(run.path).as_posix() for p in (
        run.leaderboard("parquet"), run.leaderboard("csv"), run.configurations("parquet"),
        run.configurations("csv"), run.verdict, run.summary, run.report, run.best_model,
        run.cache, run.trials,
    )] == ["leaderboard.parquet", "leaderboard.csv", "configurations.parquet",
           "configurations.csv", "verdict.txt", "summary.json", "report.html", "best_model",
           "cache", "trials"]  # fmt: skip
    trial = run.trial("t-0")
    assert trial.path == run.trials / "t-0"
    assert [p.relative_to(trial.path).as_posix() for p in (
        trial.record, trial.predictions, trial.model
    )] == ["trial.json", "predictions.parquet", "model"]  # fmt: skip
    assert layout.tune_latest.report == tmp_path / "tune" / "latest" / "report.html"
    gate = layout.validation_report(day, "features")
    assert gate.summary == tmp_path / "reports/validation/date=2024-02-14/features/summary.json"
    assert gate.page == gate.path / "report.html"
    assert layout.data_docs("all").index == tmp_path / "reports/data_docs/all/index.html"
    scoring = layout.scoring_report(day)
    assert scoring.summary == tmp_path / "reports/scoring/date=2024-02-14/scoring_report.json"
    assert scoring.page == scoring.path / "scoring_report.html"
    lists = layout.recommendation_partition(day)
    assert lists.path == layout.recommendations(day) == tmp_path / "recommendations/date=2024-02-14"
    assert (lists.rows.name, lists.manifest.name) == ("part-0.parquet", "_manifest.json")
    daily = layout.daily_run(day)
    assert (daily.manifest, daily.report, daily.log) == (
        tmp_path / "runs/date=2024-02-14/manifest.json",
        tmp_path / "runs/date=2024-02-14/report.html",
        tmp_path / "runs/date=2024-02-14/run.log",
    )
    assert layout.shared_steps_manifest == tmp_path / "runs" / "shared.json"
    assert layout.run_log == tmp_path / "runs" / "run.log"
    assert layout.table("id_map") == tmp_path / "canonical" / "id_map.parquet"
    assert layout.quarantine_rows == tmp_path / "quarantine" / "quarantine.parquet"
    assert layout.serving_source == tmp_path / "serving" / "user_recommendations.parquet"
    assert dataset_part(3) == "part-00003.parquet"
    state = Checkpoint(tmp_path)
    assert [p.name for p in (state.model, state.best, state.optimizer, state.state)] == [
        "model.safetensors", "best.safetensors", "optimizer.safetensors", "state.json"
    ]  # fmt: skip


def test_a_pointer_round_trips_and_keeps_its_json_shape(tmp_path: Path) -> None:
    path = CurrentModel(version="v1", path="v1").write(tmp_path / "current.json")
    assert json.loads(path.read_text()) == {"version": "v1", "path": "v1"}
    assert CurrentModel.load(path) == CurrentModel(version="v1", path="v1")
    last = LastTrained(date=dt.date(2024, 2, 14), version="v1").write(tmp_path / "last.json")
    assert json.loads(last.read_text()) == {"date": "2024-02-14", "version": "v1"}
    assert LastTrained.load(last).date == dt.date(2024, 2, 14)


def test_a_broken_artifact_is_an_error_that_names_the_file_and_the_missing_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"strategy": "smote"}))
    with pytest.raises(StageError, match=r"best\.json lacks key\(s\) \[.*'loss'"):
        TunedBest.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(StageError, match="must hold a JSON object"):
        TunedBest.load(path)
    path.write_text("{")
    with pytest.raises(StageError, match="cannot read"):
        TunedBest.load(path)


def test_tuned_best_applies_only_above_zero_and_beyond_noise() -> None:
    vs = {"estimate": 0.02, "low": 0.01, "high": 0.03, "level": 0.95, "beyond_noise": True,
          "se_test": 0.01, "se_seed": 0.0, "seeds": [1, 2]}  # fmt: skip
    assert TunedBest.model_validate({**_BEST, "vs_baseline": vs}).better_beyond_noise()
    below = {**vs, "estimate": -0.02, "low": -0.03, "high": -0.01}
    assert not TunedBest.model_validate({**_BEST, "vs_baseline": below}).better_beyond_noise()
    assert not TunedBest.model_validate({**_BEST, "vs_baseline": None}).better_beyond_noise()


def test_backtest_metrics_keep_a_nan_metric_as_written(tmp_path: Path) -> None:
    raw = {
        "date": "2024-02-14", "cutoff": "c", "holdout_end": "e", "holdout_days": 3, "k": 20,
        "target_event": "purchase", "exclude_purchased": True, "users_served": 9,
        "users_with_truth": 5, "users_without_list": 0, "users_evaluated": 5,
        "target_pairs": 7, "tail_target_pairs": 1, "catalog_size": 100, "model_version": "v",
        "strategy": "none", "loss": "bce", "bootstrap_rounds": 10, "candidate_recall": {},
        "verdict": "v", "timings_s": {"total": 1.5},
        "systems": {"model": {"recall_at_k": float("nan"), "users": 5}},
        "vs_baseline": {}, "recall_curves": {}, "recall_by_bucket": {},
    }  # fmt: skip
    path = BacktestMetrics.model_validate(raw).write(tmp_path / "metrics.json")
    back = BacktestMetrics.load(path)
    assert math.isnan(back.systems["model"]["recall_at_k"])
    assert back.systems["model"]["users"] == 5 and back.date == dt.date(2024, 2, 14)


def test_the_report_and_the_calibration_look_offsets_up_the_same_way() -> None:
    report = SamplingReport.build(
        strategy="random_under",
        stratum="label_bucket",
        params={},
        seed=0,
        strata={
            "head": ClassCounts(before={0: 100, 1: 10}, after={0: 10, 1: 10}),
            "tail": ClassCounts(before={0: 100, 1: 10}, after={0: 50, 1: 10}),
        },
        correction_by=POPULARITY_BUCKET,
    )
    rows = pl.DataFrame({POPULARITY_BUCKET: ["head", "tail", "new", None]})
    by, offsets = offsets_from_report(report.correction)
    assert (by, offsets) == offsets_from_report(report.to_dict())
    cal = Calibration(offset_by=by, offsets=offsets)
    known = report.log_odds_offset(rows)[:2]
    np.testing.assert_allclose(cal.row_offsets(rows[POPULARITY_BUCKET], 4)[:2], known)
    # Unknown values: the report falls back to its overall offset, a saved model to the
    # mean of the strata's offsets (what it has seen); both through one lookup.
    assert offsets["*"] == pytest.approx((math.log(10) + math.log(2)) / 2)
    fallback = row_offsets(rows[POPULARITY_BUCKET], {"head": 1.0}, fallback=-1.0, n=4)
    assert fallback.tolist() == [1.0, -1.0, -1.0, -1.0]
    assert with_fallback({}) == {"*": 0.0}
