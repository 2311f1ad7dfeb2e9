"""The leaderboard from real trials run in-process (no Ray): columns, eligibility, intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from longtail.config import Config, config_from_dict
from longtail.metrics import brier_skill, ece, log_loss_skill, relative_ece
from longtail.models import load_model
from longtail.paths import Layout
from longtail.schema import BUCKETS
from longtail.synthetic import make_training_rows, write_splits
from longtail.tune.leaderboard import (
    CONFIG_COLUMNS,
    EFFECTS,
    LEADERBOARD_COLUMNS,
    build_leaderboard,
    compare_to_baseline,
    eligible_calibration,
    read_trials,
)
from longtail.tune.trial import TrialSetup, train_trial

pytestmark = pytest.mark.unit

_BASE = {"strategy": "none", "loss": "bce", "learning_rate": 3e-3, "embedding_dim": 16}
_UNDER = {"strategy": "random_under", "loss": "weighted_bce", "learning_rate": 3e-3,
          "embedding_dim": 16}  # fmt: skip
# Two seeds of each configuration, as trial_points would give them.
POINTS = {
    "base-0": {**_BASE, "seed": 5, "replica": 0},
    "base-1": {**_BASE, "seed": 6, "replica": 1},
    "under-0": {**_UNDER, "seed": 5, "replica": 0},
    "under-1": {**_UNDER, "seed": 6, "replica": 1},
}


def _cfg(**tune: Any) -> Config:
    return config_from_dict(
        {
            "seed": 5,
            "train": {"epochs": 2, "batch_size": 256, "hash_buckets_user": 1_000,
                      "hash_buckets_item": 1_000},
            "tune": {"bootstrap_samples": 200, "max_relative_ece": 10.0, **tune},
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrialSetup, dict[str, list[dict]]]:
    layout = Layout(tmp_path_factory.mktemp("board"))
    write_splits(layout, make_training_rows(n_rows=6_000, seed=2))
    setup = TrialSetup(
        cfg=_cfg(), run_id="r1", run_dir=layout.tune_run("r1").path,
        train=layout.split("train"), validation=layout.split("validation"),
        test=layout.split("test"), epochs=2,
    )  # fmt: skip
    reports: dict[str, list[dict]] = {}
    for trial_id, point in POINTS.items():
        reports[trial_id] = []
        train_trial(setup, point, trial_id=trial_id, report=reports[trial_id].append)
    return setup, reports


def test_a_trial_reports_every_epoch_and_saves_a_loadable_calibrated_model(run: Any) -> None:
    setup, reports = run
    assert [r["epoch"] for r in reports["under-0"]] == [1.0, 2.0]
    assert {"objective", "val_ece", "val_log_loss_skill", "train_loss"} <= set(
        reports["under-0"][0]
    )
    trial = setup.files.trial("under-0")
    model = load_model(trial.path)
    assert model.manifest.strategy == "random_under"
    assert model.manifest.sampling_report is not None
    assert model.manifest.sampling_report["strategy"] == "random_under"
    # Undersampling raised the positive rate, so the calibration must undo a positive offset.
    assert min(model.calibration.offsets.values()) > 0
    record = json.loads(trial.record.read_text())
    assert record["train_rows"] < pl.read_parquet(setup.train).height
    assert record["loss_weight_ratio"] > 1.0


def test_seeds_really_train_different_models(run: Any) -> None:
    setup, _ = run
    a, b = (pl.read_parquet(setup.files.trial(t).predictions) for t in ("base-0", "base-1"))
    assert a["user_id"].to_list() == b["user_id"].to_list()
    assert not np.allclose(a["probability"].to_numpy(), b["probability"].to_numpy())
    assert {json.loads(setup.files.trial(t).record.read_text())["seed"]
            for t in ("base-0", "base-1")} == {5, 6}  # fmt: skip


def test_leaderboard_has_the_documented_columns_and_one_row_per_trial(run: Any) -> None:
    setup, _ = run
    cfg = setup.cfg
    board = build_leaderboard(read_trials(setup.run_dir), cfg.tune, k=cfg.train.ranking_k)
    assert tuple(board.columns) == LEADERBOARD_COLUMNS
    assert sorted(board["trial_id"]) == sorted(POINTS)
    for split in ("val", "test"):
        for bucket in BUCKETS:
            assert board[f"{split}_pr_auc_{bucket}"].null_count() == 0
    assert sorted(board.filter(pl.col("is_baseline"))["trial_id"]) == ["base-0", "base-1"]
    assert (board["total_seconds"] > 0).all()


def test_leaderboard_objective_is_the_one_the_trial_reported_at_its_best_epoch(run: Any) -> None:
    setup, reports = run
    cfg = setup.cfg
    board = build_leaderboard(read_trials(setup.run_dir), cfg.tune, k=cfg.train.ranking_k)
    for trial_id, history in reports.items():
        best = max(history, key=lambda r: r["objective"])
        value = board.filter(pl.col("trial_id") == trial_id)["objective"].item()
        assert value == pytest.approx(best["objective"])


def test_an_all_zero_predictor_is_never_eligible(run: Any) -> None:
    setup, _ = run
    val = pl.read_parquet(setup.validation)
    zero = val.with_columns(pl.lit(0.0).alias("probability"))
    values = {
        "heldout_ece": ece(zero),
        "heldout_relative_ece": relative_ece(zero),
        "heldout_log_loss_skill": log_loss_skill(zero),
        "heldout_brier_skill": brier_skill(zero),
    }
    base_rate = float(val["label"].mean())  # type: ignore[arg-type]
    # The old gate (ECE <= 0.05) admitted it at a base rate under 5%...
    assert values["heldout_ece"] == pytest.approx(base_rate) and base_rate < 0.05
    # ...the new one does not, whatever the relative-ECE bound and with an absolute one too.
    for tune in ({}, {"max_relative_ece": 100.0}, {"max_ece": 0.05}):
        assert not eligible_calibration(values, _cfg(**tune).tune)
    # The board applies the same gate to every trial's held-out calibration.
    board = build_leaderboard(read_trials(setup.run_dir), setup.cfg.tune, k=5)
    assert board["eligible"].to_list() == [
        eligible_calibration(row, setup.cfg.tune) for row in board.iter_rows(named=True)
    ]


def test_configurations_average_seeds_and_fill_intervals_against_the_baseline(run: Any) -> None:
    setup, _ = run
    cfg = setup.cfg
    outcomes = read_trials(setup.run_dir)
    board = build_leaderboard(outcomes, cfg.tune, k=5)
    comparison = compare_to_baseline(board, outcomes, cfg.tune, k=5)
    table = comparison.configurations
    assert tuple(table.columns) == CONFIG_COLUMNS
    assert table["seeds"].to_list() == [2, 2]
    assert comparison.leaderboard["selected"].all()
    for row in table.iter_rows(named=True):
        trials = board.filter(pl.col("label") == row["label"])
        assert row["objective"] == pytest.approx(trials["objective"].mean())
        # The test objective is the seed mean of the test PR-AUC (objective pr_auc).
        assert row["test_objective"] == pytest.approx(trials["test_pr_auc"].mean())
        assert row["test_objective_low"] <= row["test_objective"] <= row["test_objective_high"]
        assert row["se_seed"] > 0  # two seeds: training noise is in the interval
    base = table.filter(pl.col("is_baseline")).row(0, named=True)
    other = table.filter(~pl.col("is_baseline")).row(0, named=True)
    assert base["diff_vs_baseline"] is None
    assert other["diff_vs_baseline"] == pytest.approx(
        other["test_objective"] - base["test_objective"]
    )
    assert other["beyond_noise"] == (other["diff_low"] > 0 or other["diff_high"] < 0)
    for metric in EFFECTS:
        assert other[f"diff_{metric}_low"] <= other[f"diff_{metric}"]
        assert other[f"diff_{metric}"] <= other[f"diff_{metric}_high"]
    text = comparison.verdict
    assert "2 seed(s)" in text and "bootstrap rounds over test users" in text
    assert "the same 1 learning-rate/embedding-size draw(s)" in text


def test_nothing_is_recommended_when_no_configuration_meets_the_calibration_bounds(
    run: Any,
) -> None:
    setup, _ = run
    strict = _cfg(max_relative_ece=1e-9)
    outcomes = read_trials(setup.run_dir)
    board = build_leaderboard(outcomes, strict.tune, k=5)
    assert not board["eligible"].any()
    comparison = compare_to_baseline(board, outcomes, strict.tune, k=5)
    assert comparison.best_trial is None and comparison.configurations["rank"].null_count() == 2
    assert "none is recommended" in comparison.verdict


def test_trials_without_a_record_are_skipped(run: Any, tmp_path: Path) -> None:
    setup, _ = run
    setup.files.trial("empty").path.mkdir(exist_ok=True)
    assert {o.trial_id for o in read_trials(setup.run_dir)} == set(POINTS)
