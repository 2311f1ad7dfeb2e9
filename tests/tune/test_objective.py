from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score

from longtail.errors import StageError
from longtail.metrics import recall_at_k
from longtail.tune.objective import (
    interval_inputs,
    objective_value,
    per_user_recall,
)
from longtail.tune.stats import bootstrap_ci, paired_bootstrap_diff

pytestmark = pytest.mark.unit


def _rows(n: int = 2_000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.1).astype(np.int8)
    return pl.DataFrame(
        {
            "user_id": rng.integers(0, 200, n),
            "item_id": np.arange(n),
            "item_popularity_bucket": rng.choice(["head", "torso", "tail"], n),
            "label": label,
            "probability": np.clip(0.1 + 0.3 * label * rng.random(n) + 0.05 * rng.random(n), 0, 1),
        }
    )


def test_tail_objective_is_the_mean_of_head_and_tail_pr_auc() -> None:
    rows = _rows()
    parts = [rows.filter(pl.col("item_popularity_bucket") == b) for b in ("head", "tail")]
    expected = np.mean([average_precision_score(p["label"], p["probability"]) for p in parts])
    assert objective_value(rows, "tail_pr_auc", k=5) == pytest.approx(expected)


def test_per_user_recall_averages_to_recall_at_k() -> None:
    rows = _rows()
    per_user = per_user_recall(rows, k=5)
    assert per_user["recall"].mean() == pytest.approx(recall_at_k(rows, k=5))
    assert per_user.height == rows.filter(pl.col("label") == 1)["user_id"].n_unique()


def test_objective_without_positives_is_nan_and_intervals_refuse() -> None:
    rows = _rows().with_columns(pl.lit(0, dtype=pl.Int8).alias("label"))
    assert np.isnan(objective_value(rows, "pr_auc", k=5))
    assert np.isnan(objective_value(rows, "recall_at_k", k=5))
    with pytest.raises(StageError, match="no positive"):
        interval_inputs(rows, "pr_auc", k=5, cluster_by_user=True)


def test_identical_scores_give_a_zero_width_difference_at_zero() -> None:
    rows = _rows()
    for name in ("pr_auc", "tail_pr_auc", "recall_at_k"):
        inputs = interval_inputs(rows, name, k=5, cluster_by_user=True)  # type: ignore[arg-type]
        p = inputs.scores(rows)
        diff = paired_bootstrap_diff(inputs.metric, inputs.y, p, p, rounds=50, groups=inputs.groups)
        assert (diff.estimate, diff.low, diff.high) == (0.0, 0.0, 0.0)


def test_a_perfect_ranker_has_pr_auc_one_and_a_known_gain_over_the_baseline() -> None:
    rows = _rows()
    perfect = rows.with_columns(pl.col("label").cast(pl.Float64).alias("probability"))
    inputs = interval_inputs(rows, "pr_auc", k=5, cluster_by_user=True)
    ci = bootstrap_ci(
        inputs.metric, inputs.y, inputs.scores(perfect), rounds=50, groups=inputs.groups
    )
    assert (ci.estimate, ci.low, ci.high) == (1.0, 1.0, 1.0)
    base = average_precision_score(rows["label"], rows["probability"])
    diff = paired_bootstrap_diff(
        inputs.metric, inputs.y, inputs.scores(perfect), inputs.scores(rows),
        rounds=100, groups=inputs.groups,
    )  # fmt: skip
    assert diff.estimate == pytest.approx(1.0 - base)
    assert diff.low > 0


def test_recall_interval_is_over_users_and_a_constant_gain_is_recovered_exactly() -> None:
    rows = _rows()
    inputs = interval_inputs(rows, "recall_at_k", k=5, cluster_by_user=True)
    p = inputs.scores(rows)
    assert inputs.y.size == p.size == rows.filter(pl.col("label") == 1)["user_id"].n_unique()
    diff = paired_bootstrap_diff(inputs.metric, inputs.y, p + 0.1, p, rounds=100)
    assert diff.estimate == pytest.approx(0.1)
    assert diff.low == pytest.approx(0.1) and diff.high == pytest.approx(0.1)


def test_tail_interval_resamples_rows_with_their_buckets() -> None:
    rows = _rows()
    inputs = interval_inputs(rows, "tail_pr_auc", k=5, cluster_by_user=False)
    assert inputs.groups is None
    value = inputs.metric(inputs.y, inputs.scores(rows))
    assert value == pytest.approx(objective_value(rows, "tail_pr_auc", k=5))
