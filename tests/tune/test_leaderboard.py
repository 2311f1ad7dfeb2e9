"""The leaderboard from real trials run in-process (no Ray): columns, eligibility, intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from longtail.config import Config, config_from_dict
from longtail.models import load_model
from longtail.paths import Layout
from longtail.schema import BUCKETS
from longtail.train.synthetic import make_training_rows, write_splits
from longtail.tune.leaderboard import (
    LEADERBOARD_COLUMNS,
    build_leaderboard,
    compare_to_baseline,
    read_trials,
)
from longtail.tune.trial import TrialSetup, train_trial

pytestmark = pytest.mark.unit

POINTS = {
    "base": {"strategy": "none", "loss": "bce", "learning_rate": 3e-3, "embedding_dim": 16},
    "under": {
        "strategy": "random_under",
        "loss": "weighted_bce",
        "learning_rate": 5e-3,
        "embedding_dim": 8,
    },
}


def _cfg(**tune: Any) -> Config:
    return config_from_dict(
        {
            "seed": 5,
            "train": {"epochs": 2, "batch_size": 256, "hash_buckets_user": 1_000,
                      "hash_buckets_item": 1_000},
            "tune": {"bootstrap_samples": 30, **tune},
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrialSetup, dict[str, list[dict]]]:
    layout = Layout(tmp_path_factory.mktemp("board"))
    write_splits(layout, make_training_rows(n_rows=6_000, seed=2))
    setup = TrialSetup(
        cfg=_cfg(), run_id="r1", run_dir=layout.tune / "r1",
        train=layout.training / "train.parquet",
        validation=layout.training / "validation.parquet",
        test=layout.training / "test.parquet", epochs=2,
    )  # fmt: skip
    reports: dict[str, list[dict]] = {}
    for trial_id, point in POINTS.items():
        reports[trial_id] = []
        train_trial(setup, point, trial_id=trial_id, report=reports[trial_id].append)
    return setup, reports


def test_a_trial_reports_every_epoch_and_saves_a_loadable_calibrated_model(run: Any) -> None:
    setup, reports = run
    assert [r["epoch"] for r in reports["under"]] == [1.0, 2.0]
    assert {"objective", "val_ece", "train_loss"} <= set(reports["under"][0])
    folder = setup.run_dir / "trials" / "under"
    model = load_model(folder)
    assert model.manifest["strategy"] == "random_under"
    assert model.manifest["sampling_report"]["strategy"] == "random_under"
    # Undersampling raised the positive rate, so the calibration must undo a positive offset.
    assert min(model.calibration.offsets.values()) > 0
    record = json.loads((folder / "trial.json").read_text())
    assert record["train_rows"] < pl.read_parquet(setup.train).height


def test_leaderboard_has_the_documented_columns_and_one_row_per_trial(run: Any) -> None:
    setup, _ = run
    cfg = setup.cfg
    board = build_leaderboard(read_trials(setup.run_dir), cfg.tune, k=cfg.train.ranking_k)
    assert tuple(board.columns) == LEADERBOARD_COLUMNS
    assert sorted(board["trial_id"]) == ["base", "under"]
    for split in ("val", "test"):
        for bucket in BUCKETS:
            assert board[f"{split}_pr_auc_{bucket}"].null_count() == 0
    assert board.filter(pl.col("is_baseline"))["trial_id"].to_list() == ["base"]
    assert (board["total_seconds"] > 0).all()
    assert board["strategy_params"].to_list() == [
        json.dumps(json.loads(s), sort_keys=True) for s in board["strategy_params"]
    ]


def test_leaderboard_objective_is_the_one_the_trial_reported_at_its_best_epoch(run: Any) -> None:
    setup, reports = run
    cfg = setup.cfg
    board = build_leaderboard(read_trials(setup.run_dir), cfg.tune, k=cfg.train.ranking_k)
    for trial_id, history in reports.items():
        best = max(history, key=lambda r: r["objective"])
        value = board.filter(pl.col("trial_id") == trial_id)["objective"].item()
        assert value == pytest.approx(best["objective"])


def test_ranks_go_to_eligible_trials_by_objective(run: Any) -> None:
    setup, _ = run
    cfg = setup.cfg
    board = build_leaderboard(read_trials(setup.run_dir), cfg.tune, k=cfg.train.ranking_k)
    eligible = board.filter(pl.col("eligible"))
    assert eligible["rank"].to_list() == list(range(1, eligible.height + 1))
    assert eligible["objective"].is_sorted(descending=True)
    assert board.filter(pl.col("is_best")).height == (1 if eligible.height else 0)


def test_a_trial_above_the_ece_bound_cannot_win(run: Any) -> None:
    setup, _ = run
    strict = _cfg(max_ece=1e-9)
    outcomes = read_trials(setup.run_dir)
    board = build_leaderboard(outcomes, strict.tune, k=5)
    assert not board["eligible"].any() and board["rank"].null_count() == board.height
    comparison = compare_to_baseline(board, outcomes, strict.tune, k=5)
    assert comparison.best_trial is None
    assert "no configuration is recommended" in comparison.verdict


def test_intervals_cover_the_best_and_the_baseline_with_a_paired_difference(run: Any) -> None:
    setup, _ = run
    loose = _cfg(max_ece=1.0)
    outcomes = read_trials(setup.run_dir)
    board = build_leaderboard(outcomes, loose.tune, k=5)
    comparison = compare_to_baseline(board, outcomes, loose.tune, k=5)
    filled = comparison.leaderboard
    assert filled["test_objective"].null_count() == 0
    low, est, high = (filled[c] for c in ("test_objective_low", "test_objective",
                                          "test_objective_high"))  # fmt: skip
    assert ((low <= est) & (est <= high)).all()
    # The test objective is the test PR-AUC (objective pr_auc).
    assert filled["test_objective"].to_list() == pytest.approx(filled["test_pr_auc"].to_list())
    base = filled.filter(pl.col("is_baseline"))
    assert base["diff_vs_baseline"].is_null().all()
    if comparison.best_trial != "base":
        best = filled.filter(pl.col("trial_id") == comparison.best_trial).row(0, named=True)
        assert best["diff_vs_baseline"] == pytest.approx(
            best["test_objective"] - base["test_objective"].item()
        )
        assert best["beyond_noise"] == (best["diff_low"] > 0 or best["diff_high"] < 0)
    assert "bootstrap rounds over test users" in comparison.verdict


def test_trials_without_a_record_are_skipped(run: Any, tmp_path: Path) -> None:
    setup, _ = run
    (setup.run_dir / "trials" / "empty").mkdir(exist_ok=True)
    assert {o.trial_id for o in read_trials(setup.run_dir)} == {"base", "under"}
