from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from longtail.errors import StageError
from longtail.metrics import ece
from longtail.models import Calibration, fit_calibration, offsets_from_report
from longtail.models.calibration import sigmoid

pytestmark = pytest.mark.unit


def _truth(n: int = 40_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logit = rng.normal(-3.5, 1.2, n)
    buckets = rng.choice(np.array(["head", "torso", "tail"]), n)
    labels = (rng.random(n) < sigmoid(logit)).astype(np.float64)
    return logit, buckets, labels


def _ece(p: np.ndarray, y: np.ndarray) -> float:
    return ece(pl.DataFrame({"label": y, "probability": p}))


def test_prior_correction_undoes_bucket_undersampling() -> None:
    logit, buckets, y = _truth()
    offsets = {"head": math.log(10), "torso": math.log(5), "tail": math.log(2)}
    # A model trained on negatives kept at 1/10, 1/5, 1/2 learns logit + log(1/rate).
    model_logit = logit + np.vectorize(offsets.get)(buckets)
    cal = fit_calibration(
        model_logit,
        y,
        method="none",
        groups=buckets,
        offset_by="item_popularity_bucket",
        offsets=offsets,
    )
    np.testing.assert_allclose(cal.corrected_logits(model_logit, buckets), logit)
    assert _ece(cal.apply(model_logit, buckets), y) < _ece(sigmoid(model_logit), y) / 3


def test_temperature_recovers_a_scaled_logit() -> None:
    logit, _, y = _truth()
    cal = fit_calibration(2.0 * logit, y, method="temperature")
    assert cal.temperature == pytest.approx(2.0, rel=0.1)
    assert _ece(cal.apply(2.0 * logit), y) < _ece(sigmoid(2.0 * logit), y)


def test_platt_recovers_scale_and_a_bias_temperature_cannot_fix() -> None:
    logit, _, y = _truth()
    shifted = 2.0 * logit + 1.5  # over-confident and biased upwards
    platt = fit_calibration(shifted, y, method="platt")
    temp = fit_calibration(shifted, y, method="temperature")
    assert platt.platt_a == pytest.approx(0.5, rel=0.1)
    assert platt.platt_b == pytest.approx(-0.75, abs=0.15)
    assert _ece(platt.apply(shifted), y) < _ece(temp.apply(shifted), y) / 2
    again = type(platt).from_json(platt.to_json())
    np.testing.assert_allclose(again.apply(shifted), platt.apply(shifted))


def test_isotonic_is_monotone_and_calibrated() -> None:
    logit, _, y = _truth()
    cal = fit_calibration(logit + 2.0, y, method="isotonic")
    p = cal.apply(np.sort(logit + 2.0))
    assert np.all(np.diff(p) >= 0)
    assert _ece(cal.apply(logit + 2.0), y) < _ece(sigmoid(logit + 2.0), y) / 3


def test_loss_shift_is_removed_before_scaling() -> None:
    cal = Calibration(loss_shift=math.log(4.0))
    assert cal.apply(np.array([math.log(4.0)]))[0] == pytest.approx(0.5)


def test_unknown_bucket_falls_back_to_star_offset() -> None:
    by, offsets = offsets_from_report(
        {
            "correction": {
                "by": "item_popularity_bucket",
                "log_odds_offset": {"head": 1.0, "tail": 3.0},
            }
        }
    )
    assert by == "item_popularity_bucket"
    assert offsets["*"] == pytest.approx(2.0)
    cal = Calibration(offset_by=by, offsets=offsets)
    assert cal.row_offsets(np.array(["head", "new", None]), 3).tolist() == [1.0, 2.0, 2.0]
    series = pl.Series(["tail", None, "head", "new"])
    assert cal.row_offsets(series, 4).tolist() == [3.0, 2.0, 1.0, 2.0]


def test_report_without_bucket_uses_one_offset() -> None:
    by, offsets = offsets_from_report({"correction": {"by": None, "log_odds_offset": {"*": 0.7}}})
    assert by is None and offsets == {"*": 0.7}
    assert offsets_from_report(None) == (None, {"*": 0.0})


def test_malformed_report_is_a_clear_error() -> None:
    with pytest.raises(StageError, match="log_odds_offset"):
        offsets_from_report({"strategy": "x"})


def test_calibration_round_trips_through_json() -> None:
    logit, buckets, y = _truth(5_000)
    cal = fit_calibration(
        logit, y, method="isotonic", groups=buckets, offset_by="b", offsets={"head": 0.3, "*": 0.1}
    )
    again = Calibration.from_json(cal.to_json())
    np.testing.assert_array_equal(again.apply(logit, buckets), cal.apply(logit, buckets))


def test_fitted_scaling_needs_both_classes() -> None:
    with pytest.raises(StageError, match="both classes"):
        fit_calibration(np.zeros(3), np.zeros(3), method="temperature")
