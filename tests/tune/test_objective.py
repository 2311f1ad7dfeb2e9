from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score

from longtail.errors import StageError
from longtail.metrics import recall_at_k
from longtail.tune.objective import objective_value, per_user_recall
from tests.tune.intervals import bootstrap_ci, interval_inputs, paired_bootstrap_diff

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


def _candidate_lists(seed: int, *, informative: bool) -> pl.DataFrame:
    # 60 users x 3 snapshot times x 200 candidates, one or two purchases per list.
    import datetime as dt

    rng = np.random.default_rng(seed)
    rows = []
    for user in range(60):
        for day in range(3):
            t = dt.datetime(2024, 1, 10 + day, tzinfo=dt.UTC)
            labels = np.zeros(200)
            labels[rng.choice(200, size=int(rng.integers(1, 3)), replace=False)] = 1
            noise = rng.random(200)
            p = 0.5 * noise + 0.6 * labels if informative else noise
            buckets = np.where(np.arange(200) % 3 == 0, "tail", "head")
            rows += [(user, i, t, int(labels[i]), float(p[i]), str(buckets[i])) for i in range(200)]
    return pl.DataFrame(
        rows,
        schema=["user_id", "item_id", "event_time", "label", "probability",
                "item_popularity_bucket"],
        orient="row",
    )  # fmt: skip


def test_list_objectives_tell_a_model_from_random_on_candidate_lists() -> None:
    # The objective the issue found broken: random scores must not look good.
    random_rows = _candidate_lists(0, informative=False)
    model_rows = _candidate_lists(0, informative=True)
    for name in ("recall_at_k", "ndcg_at_k", "tail_recall_at_k"):
        random_value = objective_value(random_rows, name, k=20)
        if name == "ndcg_at_k":  # discounted: below the share of slots
            assert random_value < 20 / 200
        else:  # a random top 20 of 200 holds a tenth of the positives
            assert random_value == pytest.approx(20 / 200, abs=0.08)
        assert objective_value(model_rows, name, k=20) > 0.9


def test_a_list_is_one_user_at_one_time() -> None:
    rows = _candidate_lists(1, informative=True).filter(pl.col("user_id") < 2)
    per = per_user_recall(rows, k=1)
    # k = 1 per list: each list's top item is one of its 1-2 positives.
    lists = rows.group_by("user_id", "event_time").agg(pl.col("label").sum().alias("n"))
    want = (
        lists.with_columns((1 / pl.col("n")).alias("r"))
        .group_by("user_id")
        .agg(pl.col("r").mean())
        .sort("user_id")
    )
    assert per["recall"].to_list() == pytest.approx(want["r"].to_list())


def test_list_objectives_score_under_bootstrap_weights_with_integer_users() -> None:
    # The tune's intervals join each user's list metric back on user_id: a float fill
    # once turned user_id into f64 and the join failed at the end of every list tune.
    from longtail.tune.objective import per_user_list_metric, test_scores, test_units

    rows = _candidate_lists(2, informative=True)
    for name in ("recall_at_k", "ndcg_at_k", "tail_recall_at_k"):
        per = per_user_list_metric(rows, name, k=20)
        assert per["user_id"].dtype == pl.Int64
        score = test_scores(rows, name, k=20)["objective"]
        units = test_units(rows, name, cluster_by_user=True)
        ones = np.ones((1, rows.height))
        assert score(ones)[0] == pytest.approx(objective_value(rows, name, k=20))
        assert units.max() + 1 == rows["user_id"].n_unique()
