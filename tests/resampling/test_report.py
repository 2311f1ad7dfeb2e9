"""The sampling report and the prior correction it carries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from longtail.config import ResamplingConfig
from longtail.errors import StageError
from longtail.models.calibration import Calibration, offsets_from_report
from longtail.prior import correct_probabilities
from longtail.resampling import ClassCounts, SamplingReport, resample_frame
from longtail.schema import ITEM_CATEGORY, LABEL, POPULARITY_BUCKET


def _prior(frame: pl.DataFrame) -> float:
    return float(frame.get_column(LABEL).mean())  # type: ignore[arg-type]


@pytest.mark.unit
def test_correction_by_hand() -> None:
    # 1,000 negatives kept as 100 (rate 0.1); 20 positives kept whole (rate 1).
    report = SamplingReport.build(
        strategy="random_under",
        stratum="label_bucket",
        params={},
        seed=0,
        strata={"head": ClassCounts(before={0: 1000, 1: 20}, after={0: 100, 1: 20})},
        correction_by=POPULARITY_BUCKET,
    )
    assert report.log_odds_offset_by == {"head": pytest.approx(math.log(10.0))}
    # A resampled-model probability of 20/120 corrects to the true 20/1020.
    corrected = correct_probabilities([20 / 120], report.log_odds_offset_by["head"])
    np.testing.assert_allclose(corrected, [20 / 1020])
    # sigmoid(logit(0.5) - log 10) = 1 / 11; 0 and 1 stay put.
    np.testing.assert_allclose(correct_probabilities([0.0, 0.5, 1.0], math.log(10)), [0, 1 / 11, 1])


@pytest.mark.unit
@pytest.mark.parametrize("strategy", ["random_under", "random_over", "smote", "cluster_centroids"])
def test_correction_gives_back_the_original_prior_per_bucket(
    strategy: str, train_frame: pl.DataFrame
) -> None:
    cfg = ResamplingConfig(strategy=strategy, params={"sampling_strategy": 0.25})
    out, report = resample_frame(train_frame, cfg, seed=3)
    assert report.correction_by == POPULARITY_BUCKET
    for bucket in ("head", "torso", "tail"):
        before = train_frame.filter(pl.col(POPULARITY_BUCKET) == bucket)
        after = out.filter(pl.col(POPULARITY_BUCKET) == bucket)
        assert _prior(after) > 2 * _prior(before)  # the prior really moved
        offsets = report.log_odds_offset(after)
        assert np.unique(offsets).size == 1
        corrected = correct_probabilities(_prior(after), offsets[0])
        assert corrected == pytest.approx(_prior(before), rel=1e-12)


@pytest.mark.unit
def test_per_stratum_offsets_for_the_category_stratum_match_the_sampling_rates(
    train_frame: pl.DataFrame,
) -> None:
    cfg = ResamplingConfig(strategy="random_under", stratum="category")
    out, report = resample_frame(train_frame, cfg, seed=3)
    assert report.correction_by == ITEM_CATEGORY
    for category, counts in report.strata.items():
        key = pl.col(ITEM_CATEGORY).cast(pl.String).fill_null("null") == category
        before, after = train_frame.filter(key), out.filter(key)
        rates = [after.filter(pl.col(LABEL) == c).height / before.filter(pl.col(LABEL) == c).height
                 for c in (0, 1)]  # fmt: skip
        assert report.log_odds_offset_by[category] == pytest.approx(math.log(rates[1] / rates[0]))
        assert counts.offset() == pytest.approx(math.log(rates[1] / rates[0]))
        # Each category's corrected prior is its own original prior, not the overall one.
        offsets = report.log_odds_offset(after)
        assert np.unique(offsets).size == 1
        assert correct_probabilities(_prior(after), offsets[0]) == pytest.approx(_prior(before))
    spread = max(report.log_odds_offset_by.values()) - min(report.log_odds_offset_by.values())
    assert spread > 0.1  # the categories' rates really differ
    # The calibration reads the same offsets from the rows' category.
    by, offsets_json = offsets_from_report(report.to_dict())
    cal = Calibration(offset_by=by, offsets=offsets_json)
    np.testing.assert_allclose(
        cal.row_offsets(out[ITEM_CATEGORY].to_numpy(), out.height), report.log_odds_offset(out)
    )


@pytest.mark.unit
def test_user_hash_stratum_is_refused_when_its_buckets_need_different_offsets() -> None:
    strata = {
        "0": ClassCounts(before={0: 1000, 1: 20}, after={0: 100, 1: 20}),
        "1": ClassCounts(before={0: 1000, 1: 60}, after={0: 300, 1: 60}),
    }
    with pytest.raises(StageError, match=r"user_hash.*per-stratum offsets"):
        SamplingReport.build(
            strategy="random_under", stratum="user_hash", params={}, seed=0,
            strata=strata, correction_by=None,
        )  # fmt: skip


@pytest.mark.unit
def test_unknown_bucket_falls_back_to_the_overall_offset() -> None:
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
    overall = math.log(1.0 / (60 / 200))
    np.testing.assert_allclose(
        report.log_odds_offset(rows), [math.log(10), math.log(2), overall, overall]
    )


@pytest.mark.unit
def test_report_round_trips_through_json_with_the_contract_keys(
    tmp_path: Path, train_frame: pl.DataFrame
) -> None:
    _, report = resample_frame(train_frame, ResamplingConfig(strategy="smote"), seed=1)
    path = report.write(tmp_path / "sampling_report.json")
    raw = json.loads(path.read_text())
    assert {"strategy", "stratum", "params", "seed", "overall", "strata", "correction"} <= set(raw)
    assert set(raw["overall"]) == {"before", "after", "rate"}
    assert set(raw["overall"]["rate"]) == {"0", "1"}
    overall = raw["overall"]
    assert overall["rate"]["1"] == overall["after"]["1"] / overall["before"]["1"]
    assert [s["stratum"] for s in raw["strata"]] == ["head", "tail", "torso"]
    assert raw["correction"]["by"] == POPULARITY_BUCKET
    assert raw["synthetic"]["1"] == raw["overall"]["after"]["1"] - raw["overall"]["before"]["1"]
    assert SamplingReport.load(path) == report


@pytest.mark.unit
def test_loading_a_file_that_is_not_a_report_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"strategy": "smote"}))
    with pytest.raises(StageError, match="not a sampling report"):
        SamplingReport.load(path)


@pytest.mark.unit
def test_probabilities_outside_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError, match=r"Got \[1.5\] instead"):
        correct_probabilities([0.2, 1.5], 0.0)
