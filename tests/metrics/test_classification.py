from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)
from sklearn.metrics import log_loss as sklearn_log_loss

from longtail.errors import StageError
from longtail.metrics import (
    brier,
    brier_skill,
    classification_report,
    ece,
    ece_by_scope,
    log_loss,
    log_loss_skill,
    pr_auc,
    ranked_aucs,
    relative_ece,
    reliability_bins,
    roc_auc,
)
from tests.metrics.per_bucket import per_bucket

pytestmark = pytest.mark.unit


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "label": [0, 0, 1, 1],
            "probability": [0.1, 0.4, 0.35, 0.8],
            "item_popularity_bucket": ["head", "tail", "head", "tail"],
        }
    )


def test_roc_auc_counts_correctly_ordered_pairs() -> None:
    # Pairs (pos, neg): (.35,.1) ok, (.35,.4) wrong, (.8,.1) ok, (.8,.4) ok -> 3/4.
    assert roc_auc(_frame()) == pytest.approx(0.75)


def test_pr_auc_is_average_precision() -> None:
    # Ranked: .8 (hit, P=1, R=.5), .4 (miss), .35 (hit, P=2/3, R=1) -> .5*1 + .5*2/3.
    assert pr_auc(_frame()) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_log_loss_and_brier_match_hand_computation() -> None:
    f = _frame()
    expected = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert log_loss(f) == pytest.approx(expected)
    assert brier(f) == pytest.approx((0.01 + 0.16 + 0.65**2 + 0.04) / 4)


def test_ece_is_count_weighted_gap_of_bins() -> None:
    f = pl.DataFrame({"label": [0, 1, 1, 1], "probability": [0.1, 0.1, 0.9, 0.9]})
    # bin [.1,.2): mean .1 vs rate .5 (gap .4, 2 rows); bin [.9,1]: .9 vs 1 (gap .1, 2 rows).
    assert ece(f, n_bins=10) == pytest.approx((0.4 * 2 + 0.1 * 2) / 4)
    bins = reliability_bins(f, n_bins=10, strategy="uniform")
    assert bins["bin"].to_list() == [1, 9]
    assert bins["count"].to_list() == [2, 2]


def test_quantile_bins_hold_equal_mass_where_uniform_bins_pile_into_the_first() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(0.5, 15.0, 3_000)  # most mass near zero, as at a 3% base rate
    f = pl.DataFrame({"label": (rng.random(3_000) < p).astype(int), "probability": p})
    counts = reliability_bins(f, n_bins=10)["count"].to_numpy()
    assert counts.size == 10 and counts.min() >= 290 and counts.max() <= 310
    uniform = reliability_bins(f, n_bins=10, strategy="uniform")["count"].to_numpy()
    assert uniform[0] > 0.5 * 3_000


def test_a_constant_zero_predictor_has_relative_ece_one_and_negative_skill() -> None:
    y = [1] * 4 + [0] * 96
    zero = pl.DataFrame({"label": y, "probability": [0.0] * 100})
    assert ece(zero) == pytest.approx(0.04)
    assert relative_ece(zero) == pytest.approx(1.0)
    assert log_loss_skill(zero) < -1
    assert brier_skill(zero) == pytest.approx(1 - 0.04 / (0.04 * 0.96))
    base = pl.DataFrame({"label": y, "probability": [0.04] * 100})
    assert log_loss_skill(base) == pytest.approx(0.0, abs=1e-9)
    assert brier_skill(base) == pytest.approx(0.0, abs=1e-12)
    assert relative_ece(base) == pytest.approx(0.0, abs=1e-12)


def test_auc_is_nan_with_one_class() -> None:
    f = pl.DataFrame({"label": [0, 0], "probability": [0.2, 0.3]})
    assert math.isnan(roc_auc(f))
    assert math.isnan(pr_auc(f))


@pytest.mark.parametrize(
    ("n", "rate", "decimals"),
    [(1_000, 0.02, 2), (5_000, 0.3, 3), (20_000, 0.01, 6), (3, 0.5, 1), (40, 0.1, 0)],
)
def test_ranked_aucs_equal_scikit_learns_with_tied_scores_and_rare_positives(
    n: int, rate: float, decimals: int
) -> None:
    # Rounded scores tie in runs (decimals=0: a handful of distinct values), the case
    # where a sort-based AUC goes wrong if a tie is not one threshold.
    rng = np.random.default_rng(n)
    y = (rng.random(n) < rate).astype(np.float64)
    y[:2] = [0.0, 1.0]  # both classes
    s = np.round(rng.random(n) * 0.2 + 0.1 * y, decimals)
    roc, ap = ranked_aucs(y, s)
    assert roc == pytest.approx(roc_auc_score(y, s), rel=1e-12, abs=1e-15)
    assert ap == pytest.approx(average_precision_score(y, s), rel=1e-12, abs=1e-15)


def test_ranked_aucs_are_nan_where_a_class_is_missing_and_ap_is_one_for_all_positives() -> None:
    s = np.array([0.2, 0.7, 0.7])
    assert all(math.isnan(v) for v in ranked_aucs(np.zeros(3), s))
    assert all(math.isnan(v) for v in ranked_aucs(np.zeros(0), np.zeros(0)))
    roc, ap = ranked_aucs(np.ones(3), s)
    assert math.isnan(roc)
    assert ap == 1.0


def test_log_loss_and_brier_equal_scikit_learns() -> None:
    rng = np.random.default_rng(11)
    y = (rng.random(10_000) < 0.03).astype(np.int64)
    p = np.concatenate([rng.random(9_998) * 0.1, [0.0, 1.0]])  # the ends are clipped
    f = pl.DataFrame({"label": y, "probability": p})
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    assert log_loss(f) == pytest.approx(sklearn_log_loss(y, clipped, labels=[0, 1]), rel=1e-12)
    assert brier(f) == pytest.approx(brier_score_loss(y, p), rel=1e-12)


def test_a_nan_or_infinite_score_is_rejected_by_name() -> None:
    for bad in (float("nan"), float("inf")):
        f = _frame().with_columns(pl.Series("probability", [0.1, bad, 0.3, 0.4]))
        with pytest.raises(StageError, match="'probability' holds NaN or infinite"):
            roc_auc(f)


def test_metrics_take_column_names_by_keyword() -> None:
    f = _frame().rename({"label": "y", "probability": "p"})
    assert roc_auc(f, label="y", score="p") == pytest.approx(0.75)


def test_missing_column_error_names_it() -> None:
    with pytest.raises(StageError, match="score_x"):
        roc_auc(_frame(), score="score_x")


def test_non_numeric_score_is_rejected() -> None:
    f = _frame().with_columns(pl.col("probability").cast(pl.String))
    with pytest.raises(StageError, match="must be numeric"):
        brier(f)


def test_labels_must_be_binary() -> None:
    f = _frame().with_columns(pl.Series("label", [0, 2, 1, 1]))
    with pytest.raises(StageError, match="only 0 and 1"):
        log_loss(f)


def test_per_bucket_returns_one_row_per_bucket_in_head_torso_tail_order() -> None:
    out = per_bucket(_frame(), roc_auc)
    assert out["bucket"].to_list() == ["head", "tail"]
    assert out["rows"].to_list() == [2, 2]
    # head: pos .35 > neg .1; tail: pos .8 > neg .4.
    assert out["value"].to_list() == [1.0, 1.0]


def test_classification_report_has_overall_and_bucket_rows() -> None:
    out = classification_report(_frame())
    assert out["scope"].to_list() == ["all", "head", "tail"]
    assert set(out.columns) >= {"roc_auc", "pr_auc", "log_loss", "brier", "ece"}
    assert out.filter(pl.col("scope") == "all")["roc_auc"].item() == pytest.approx(0.75)


def test_classification_report_equals_each_metric_on_its_bucket_filtered_alone() -> None:
    # The report masks arrays read once; the reference filters the frame per bucket
    # and calls every public metric on it. Nulls in the bucket count only in "all";
    # "torso" holds one class, so its AUCs and skills are NaN.
    rng = np.random.default_rng(3)
    n = 3_000
    buckets = rng.choice(np.array(["head", "torso", "tail", None], dtype=object), size=n)
    labels = (rng.random(n) < 0.08).astype(np.int8)
    labels[buckets == "torso"] = 0
    frame = pl.DataFrame(
        {
            "label": labels,
            "probability": rng.random(n) * 0.3,
            "raw": rng.random(n) * 0.5,
            "item_popularity_bucket": pl.Series(buckets.tolist(), dtype=pl.String),
            "user_recent_items": [[1, 2, 3]] * n,
        }
    )
    functions = {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "log_loss": log_loss,
        "brier": brier,
        "ece": ece,
        "relative_ece": relative_ece,
        "log_loss_skill": log_loss_skill,
        "brier_skill": brier_skill,
    }
    report = classification_report(frame)
    raw = ece_by_scope(frame, score="raw")
    assert report["scope"].to_list() == ["all", "head", "torso", "tail"]
    assert list(raw) == report["scope"].to_list()
    for row in report.iter_rows(named=True):
        scope = row["scope"]
        part = frame if scope == "all" else frame.filter(pl.col("item_popularity_bucket") == scope)
        assert row["rows"] == part.height
        assert row["positives"] == int(part["label"].sum())
        for name, fn in functions.items():
            expected = fn(part)
            assert (math.isnan(row[name]) and math.isnan(expected)) or row[name] == expected, name
        assert raw[scope] == ece(part, score="raw")
    torso = report.filter(pl.col("scope") == "torso").row(0, named=True)
    assert math.isnan(torso["roc_auc"]) and math.isnan(torso["log_loss_skill"])
