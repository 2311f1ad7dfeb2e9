from __future__ import annotations

import numpy as np
import pytest

from longtail.tune.stats import Interval, verdict
from tests.tune.intervals import bootstrap_ci, paired_bootstrap_diff

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


def test_weighted_average_precision_matches_scikit_learn_with_sample_weights() -> None:
    from sklearn.metrics import average_precision_score

    from longtail.tune.objective import weighted_ap

    rng = np.random.default_rng(4)
    y = (rng.random(500) < 0.1).astype(np.float64)
    p = np.round(rng.random(500), 2)  # ties, as isotonic calibration makes
    w = rng.integers(0, 3, size=(3, 500)).astype(np.float64)
    got = weighted_ap(y, p)(w)
    want = [average_precision_score(y, p, sample_weight=row) for row in w]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert weighted_ap(y, p)(np.ones((1, 500)))[0] == pytest.approx(average_precision_score(y, p))


def _values(full: list[float], rng: np.random.Generator, spread: float = 0.01) -> list:
    from longtail.tune.stats import SeedValues

    return [SeedValues(f, f + rng.normal(0, spread, 400)) for f in full]


def test_seed_interval_adds_training_noise_to_the_test_sample_noise() -> None:
    from longtail.tune.stats import seed_interval

    rng = np.random.default_rng(0)
    quiet = seed_interval(_values([0.30, 0.30, 0.30], rng), _values([0.28] * 3, rng))
    noisy = seed_interval(_values([0.25, 0.30, 0.35], rng), _values([0.23, 0.28, 0.33], rng))
    assert quiet.estimate == pytest.approx(0.02) and noisy.estimate == pytest.approx(0.02)
    assert quiet.se_seed == pytest.approx(0.0) and noisy.se_seed > 0.03
    assert quiet.low > 0  # a consistent gain beyond the test noise
    assert noisy.low < 0 < noisy.high  # the same mean gain is within training noise
    assert noisy.seed_noise_known and noisy.df < 10 and noisy.seeds == (3, 3)
    single = seed_interval(_values([0.30], rng), _values([0.28], rng))
    assert not single.seed_noise_known and single.se_seed == 0.0


def test_cluster_weights_keep_each_users_rows_together_and_repeat_with_the_seed() -> None:
    from longtail.tune.stats import cluster_weights

    units = np.repeat(np.arange(20), 5)
    blocks = list(cluster_weights(units, rounds=30, seed=1, chunk=7))
    assert [b.shape[0] for b in blocks] == [7, 7, 7, 7, 2]
    w = np.concatenate(blocks)
    assert (w.reshape(30, 20, 5) == w.reshape(30, 20, 5)[:, :, :1]).all()
    np.testing.assert_allclose(w.sum(axis=1), 100.0)  # U users drawn, 5 rows each
    np.testing.assert_array_equal(
        w, np.concatenate(list(cluster_weights(units, rounds=30, seed=1)))
    )
