from __future__ import annotations

import numpy as np
import pytest

from longtail.tune.stats import Interval, bootstrap_ci, paired_bootstrap_diff, verdict

pytestmark = pytest.mark.unit


def _mean(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(p))


def test_interval_of_a_mean_matches_the_normal_theory_width() -> None:
    rng = np.random.default_rng(0)
    p = rng.normal(0.0, 1.0, 4000)
    ci = bootstrap_ci(_mean, np.zeros(4000), p, rounds=400, seed=1)
    half = 1.96 / np.sqrt(4000)
    assert ci.low < 0 < ci.high
    assert (ci.high - ci.low) / 2 == pytest.approx(half, rel=0.15)


def test_paired_difference_detects_a_real_shift_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.0, 3000)
    shifted = base + 0.05 + rng.normal(0, 0.01, 3000)  # tiny but consistent gain
    same = base + rng.normal(0, 0.01, 3000)  # no gain
    y = np.zeros(3000)
    assert paired_bootstrap_diff(_mean, y, shifted, base, rounds=300).low > 0
    ci = paired_bootstrap_diff(_mean, y, same, base, rounds=300)
    assert ci.low < 0 < ci.high
    # Unpaired intervals would overlap for the shifted case; pairing is what resolves it.
    a, b = bootstrap_ci(_mean, y, shifted, rounds=300), bootstrap_ci(_mean, y, base, rounds=300)
    assert a.low < b.high


def test_cluster_bootstrap_resamples_whole_groups() -> None:
    # Rows within a group are identical: the row bootstrap is overconfident, the group one is not.
    groups = np.repeat(np.arange(50), 40)
    p = np.repeat(np.random.default_rng(2).normal(0, 1, 50), 40)
    y = np.zeros(p.size)
    rows = bootstrap_ci(_mean, y, p, rounds=300)
    grouped = bootstrap_ci(_mean, y, p, rounds=300, groups=groups)
    assert (grouped.high - grouped.low) > 3 * (rows.high - rows.low)


def test_verdict_says_beyond_noise_only_when_the_interval_excludes_zero() -> None:
    win = verdict(metric_name="PR-AUC", best="smote", baseline="none/bce",
                  diff=Interval(0.02, 0.01, 0.03, 0.95), baseline_value=0.1)  # fmt: skip
    tie = verdict(metric_name="PR-AUC", best="smote", baseline="none/bce",
                  diff=Interval(0.02, -0.01, 0.05, 0.95), baseline_value=0.1)  # fmt: skip
    assert "beyond noise" in win and "+20.0%" in win
    assert "within noise" in tie
