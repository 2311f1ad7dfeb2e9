"""The backtest (stage 11): the judge of the served lists against what users did next."""

from __future__ import annotations

from longtail.backtest.baselines import BASELINES, BaselineInputs, build_baselines
from longtail.backtest.evaluate import evaluate_systems, holdout_truth
from longtail.backtest.pipeline import BacktestResult, backtest_cutoff, run_backtest

__all__ = [
    "BASELINES",
    "BacktestResult",
    "BaselineInputs",
    "backtest_cutoff",
    "build_baselines",
    "evaluate_systems",
    "holdout_truth",
    "run_backtest",
]
