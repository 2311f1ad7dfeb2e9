"""Ray Tune search over imbalance strategies and losses, with a leaderboard users can trust."""

from __future__ import annotations

from longtail.tune.runner import BEST_JSON, TuneResult, apply_best, load_best, run_tune

__all__ = ["BEST_JSON", "TuneResult", "apply_best", "load_best", "run_tune"]
