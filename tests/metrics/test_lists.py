from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from longtail import schema as S
from longtail.metrics.lists import (
    aplt,
    arp,
    catalog_coverage_of_lists,
    exposure_gini,
    gini,
    mean_accuracy,
    novelty,
    per_user_accuracy,
    recall_curve,
)

pytestmark = pytest.mark.unit


def _lists(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=[S.USER_ID, S.ITEM_ID, "rank"], orient="row")


def _truth(rows: list[tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=[S.USER_ID, S.ITEM_ID], orient="row")


# User 1: truth {10, 11}; list 10@1, 12@2, 11@3. User 2: truth {20}; list 21@1, 22@2.
LISTS = _lists([(1, 10, 1), (1, 12, 2), (1, 11, 3), (2, 21, 1), (2, 22, 2)])
TRUTH = _truth([(1, 10), (1, 11), (2, 20)])
USERS = pl.Series([1, 2])


def test_accuracy_metrics_match_hand_computed_values() -> None:
    per = per_user_accuracy(TRUTH, LISTS, USERS, k=3, tail_items=pl.Series([11, 20]))
    u1 = per.filter(pl.col(S.USER_ID) == 1).row(0, named=True)
    u2 = per.filter(pl.col(S.USER_ID) == 2).row(0, named=True)
    assert u1["recall_at_k"] == pytest.approx(1.0)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert u1["ndcg_at_k"] == pytest.approx(dcg / idcg)
    assert u1["hit_rate_at_k"] == 1.0
    assert u1["map_at_k"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert u1["tail_recall_at_k"] == pytest.approx(1.0)  # tail truth {11}, hit at rank 3
    assert (u2["recall_at_k"], u2["ndcg_at_k"], u2["hit_rate_at_k"], u2["map_at_k"]) == (0, 0, 0, 0)
    assert u2["tail_recall_at_k"] == 0.0
    means = mean_accuracy(per)
    assert means["recall_at_k"] == pytest.approx(0.5)
    assert means["hit_rate_at_k"] == pytest.approx(0.5)


def test_the_cut_off_drops_hits_below_k() -> None:
    per = per_user_accuracy(TRUTH, LISTS, USERS, k=2)
    assert per.filter(pl.col(S.USER_ID) == 1)["recall_at_k"].item() == pytest.approx(0.5)
    assert recall_curve(TRUTH, LISTS, USERS, k=3) == pytest.approx([0.25, 0.25, 0.5])


def test_tail_recall_is_averaged_over_users_with_tail_truth_only() -> None:
    per = per_user_accuracy(TRUTH, LISTS, USERS, k=3, tail_items=pl.Series([11]))
    assert per["tail_recall_at_k"].to_list() == [1.0, None]
    assert mean_accuracy(per)["tail_recall_at_k"] == pytest.approx(1.0)


def test_a_user_without_a_list_scores_zero_and_still_counts() -> None:
    per = per_user_accuracy(TRUTH, LISTS.filter(pl.col(S.USER_ID) == 1), USERS, k=3)
    assert per.height == 2
    assert per.filter(pl.col(S.USER_ID) == 2)["recall_at_k"].item() == 0.0


def test_duplicate_list_items_count_once() -> None:
    lists = _lists([(1, 10, 1), (1, 10, 2)])
    per = per_user_accuracy(_truth([(1, 10), (1, 11)]), lists, pl.Series([1]), k=2)
    assert per["hits"].item() == 1


def test_an_evaluated_user_without_truth_is_an_error() -> None:
    from longtail.errors import StageError

    with pytest.raises(StageError, match="no truth item"):
        per_user_accuracy(TRUTH, LISTS, pl.Series([1, 2, 3]), k=3)


def test_random_lists_over_a_uniform_catalog_have_recall_near_k_over_catalog() -> None:
    rng = np.random.default_rng(0)
    n_users, catalog, k = 3000, 500, 20
    truth = _truth([(u, int(rng.integers(catalog))) for u in range(n_users)])
    picks = np.stack([rng.choice(catalog, k, replace=False) for _ in range(n_users)])
    lists = pl.DataFrame(
        {
            S.USER_ID: np.repeat(np.arange(n_users), k),
            S.ITEM_ID: picks.ravel(),
            "rank": np.tile(np.arange(1, k + 1), n_users),
        }
    )
    recall = mean_accuracy(per_user_accuracy(truth, lists, pl.Series(range(n_users)), k=k))
    assert recall["recall_at_k"] == pytest.approx(k / catalog, abs=0.012)


def test_beyond_accuracy_metrics_match_hand_computed_values() -> None:
    # Lists: user 1 -> {1, 2}, user 2 -> {1, 3}; catalog {1, 2, 3, 4}; tail {3, 4}.
    lists = _lists([(1, 1, 1), (1, 2, 2), (2, 1, 1), (2, 3, 2)])
    assert catalog_coverage_of_lists(lists, k=2, catalog_size=4) == pytest.approx(0.75)
    assert aplt(lists, k=2, tail_items=pl.Series([3, 4])) == pytest.approx((0 + 0.5) / 2)
    pop = pl.DataFrame({S.ITEM_ID: [1, 2, 3], "popularity": [10, 4, 2]})
    assert arp(lists, k=2, popularity=pop) == pytest.approx(((10 + 4) / 2 + (10 + 2) / 2) / 2)
    # Exposure counts over the catalog: item 1: 2, item 2: 1, item 3: 1, item 4: 0.
    assert exposure_gini(lists, k=2, catalog=pl.Series([1, 2, 3, 4])) == pytest.approx(
        gini(np.array([2, 1, 1, 0]))
    )
    users = pl.DataFrame({S.ITEM_ID: [1, 2, 3], "users": [8, 2, 1]})
    si = {1: -math.log2(8 / 8), 2: -math.log2(2 / 8), 3: -math.log2(1 / 8)}
    want = ((si[1] + si[2]) / 2 + (si[1] + si[3]) / 2) / 2
    assert novelty(lists, k=2, item_users=users, n_users=8) == pytest.approx(want)


def test_gini_is_zero_for_equal_exposure_and_high_for_one_item() -> None:
    assert gini(np.array([3, 3, 3, 3])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 12])) == pytest.approx(0.75)


def test_list_popularity_metrics_are_the_same_bit_for_bit_on_every_call() -> None:
    # A mean over group_by rows in polars' arbitrary order moved the last bit of the
    # backtest's APLT between runs of the same lists; two runs must write one file.
    rng = np.random.default_rng(0)
    users, k = 3_000, 20
    lists = pl.DataFrame(
        {
            S.USER_ID: np.repeat(np.arange(users), k),
            S.ITEM_ID: rng.integers(0, 1_500, users * k),
            "rank": np.tile(np.arange(1, k + 1), users),
        }
    )
    tails = pl.Series(np.arange(1_000, 1_500))
    pop = pl.DataFrame({S.ITEM_ID: np.arange(1_500), "popularity": rng.random(1_500)})
    item_users = pl.DataFrame({S.ITEM_ID: np.arange(1_500), "users": rng.integers(1, 90, 1_500)})
    for metric in (
        lambda: aplt(lists, k=k, tail_items=tails),
        lambda: arp(lists, k=k, popularity=pop),
        lambda: novelty(lists, k=k, item_users=item_users, n_users=3_000),
    ):
        assert len({metric() for _ in range(25)}) == 1
