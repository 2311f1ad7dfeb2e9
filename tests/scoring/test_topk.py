from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longtail import schema as S
from longtail.scoring.topk import top_k

pytestmark = pytest.mark.unit


def _scored(n_users: int = 50, n_items: int = 40, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), n_items)
    items = np.tile(np.arange(n_items), n_users)
    buckets = np.where(items < 5, "head", np.where(items < 15, "torso", "tail"))
    score = rng.random(users.size) + np.where(buckets == "tail", -0.5, 0.0)
    return pl.DataFrame(
        {S.USER_ID: users, S.ITEM_ID: items, "score": score, S.POPULARITY_BUCKET: buckets}
    )


def test_top_k_keeps_the_k_best_in_score_order() -> None:
    scored = _scored()
    out = top_k(scored, k=10)
    assert out.group_by(S.USER_ID).len()["len"].unique().to_list() == [10]
    for _, grp in out.group_by(S.USER_ID):
        assert grp["rank"].to_list() == list(range(1, 11))
        assert grp["score"].is_sorted(descending=True)
    best = scored.sort("score", descending=True).group_by(S.USER_ID).head(10)
    assert set(best.select(S.USER_ID, S.ITEM_ID).rows()) == set(
        out.select(S.USER_ID, S.ITEM_ID).rows()
    )


def test_tail_rerank_guarantees_the_share_and_keeps_the_best_otherwise() -> None:
    scored = _scored()
    plain = top_k(scored, k=10)
    out = top_k(scored, k=10, tail_min_share=0.3)
    tails = out.filter(pl.col(S.POPULARITY_BUCKET) == "tail").group_by(S.USER_ID).len()["len"]
    assert tails.min() >= 3
    assert (
        plain.filter(pl.col(S.POPULARITY_BUCKET) == "tail").group_by(S.USER_ID).len()["len"].min()
        < 3
    )  # the re-rank changed something
    assert out.group_by(S.USER_ID).len()["len"].unique().to_list() == [10]
    assert out.select(S.USER_ID, S.ITEM_ID).is_duplicated().sum() == 0


def test_users_with_fewer_candidates_get_shorter_lists() -> None:
    scored = _scored(n_users=3, n_items=4)
    assert top_k(scored, k=10).height == 12


def test_bad_k_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"k must be >= 1\. Got 0 instead\."):
        top_k(_scored(), k=0)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 12),
    share=st.sampled_from([0.0, 0.1, 0.3, 0.5, 1.0]),
    n_batches=st.integers(1, 5),
    ties=st.booleans(),
)
def test_top_k_of_per_batch_top_k_is_the_top_k(
    seed: int, k: int, share: float, n_batches: int, ties: bool
) -> None:
    # BatchScorer keeps each user's top K per batch; a user's pairs can be split
    # over batches (rows are cut anywhere here), and the lists must not change.
    from longtail.scoring.pipeline import reduce_batch

    rng = np.random.default_rng(seed)
    scored = _scored(n_users=8, n_items=30, seed=seed)
    if ties:  # coarse scores: many exact ties, broken by item id
        scored = scored.with_columns((pl.col("score") * 4).round())
    scored = scored.with_columns(pl.col("score").alias("probability"))
    scored = scored.sample(fraction=1.0, shuffle=True, seed=seed)
    cuts = np.sort(rng.choice(np.arange(1, scored.height), size=n_batches - 1, replace=False))
    bounds = [0, *cuts.tolist(), scored.height]
    kept = pl.concat(
        reduce_batch(scored.slice(a, b - a), k=k, tail_min_share=share)
        for a, b in itertools.pairwise(bounds)
    )
    assert kept.get_column("_pairs").sum() == scored.height
    whole = top_k(scored, k=k, tail_min_share=share, score="probability").sort(S.USER_ID, "rank")
    merged = top_k(kept.drop("_pairs"), k=k, tail_min_share=share, score="probability").sort(
        S.USER_ID, "rank"
    )
    assert merged.select(whole.columns).equals(whole)


def _oracle(scored: pl.DataFrame, k: int, share: float) -> list[tuple[int, int, int]]:
    """(user, rank, item) by the rule, one user at a time in plain Python."""
    need = -(-k * share // 1) if share else 0
    out = []
    for user in sorted(set(scored[S.USER_ID].to_list())):
        rows = [r for r in scored.iter_rows(named=True) if r[S.USER_ID] == user]
        rows.sort(key=lambda r: (-r["score"], r[S.ITEM_ID]))
        tail = [r for r in rows if r[S.POPULARITY_BUCKET] == "tail"][: int(need)]
        chosen = {r[S.ITEM_ID] for r in tail}
        rest = [r for r in rows if r[S.ITEM_ID] not in chosen][: k - len(tail)]
        chosen |= {r[S.ITEM_ID] for r in rest}
        kept = [r[S.ITEM_ID] for r in rows if r[S.ITEM_ID] in chosen]
        out += [(user, rank, item) for rank, item in enumerate(kept, start=1)]
    return out


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 12),
    share=st.sampled_from([0.0, 0.1, 0.3, 0.5, 1.0]),
    ties=st.booleans(),
    n_items=st.integers(1, 25),
)
def test_top_k_matches_a_per_user_oracle(
    seed: int, k: int, share: float, ties: bool, n_items: int
) -> None:
    # top_k sorts only rows that can make a list (a score threshold per user); this
    # checks it against sorting every user's candidates, ties and the re-rank included.
    scored = _scored(n_users=6, n_items=n_items, seed=seed)
    if ties:
        scored = scored.with_columns((pl.col("score") * 3).round())
    scored = scored.sample(fraction=1.0, shuffle=True, seed=seed)
    got = top_k(scored, k=k, tail_min_share=share).sort(S.USER_ID, "rank")
    assert got.select(S.USER_ID, "rank", S.ITEM_ID).rows() == _oracle(scored, k, share)


def test_lists_rank_by_the_written_probability_not_the_logit() -> None:
    # Per-bucket prior offsets (resampling by label x bucket) make the calibrated
    # probability order differ from the raw logit's: the tail items' logits are the
    # highest here, their corrected probabilities the lowest.
    from longtail.scoring.pipeline import reduce_batch

    scored = _scored(n_users=3, n_items=30)
    offset = pl.when(pl.col(S.POPULARITY_BUCKET) == "tail").then(-5.0).otherwise(0.0)
    scored = scored.with_columns(
        pl.when(pl.col(S.POPULARITY_BUCKET) == "tail")
        .then(pl.col("score") + 3.0)
        .otherwise(pl.col("score"))
        .alias("score")
    ).with_columns((1 / (1 + (-(pl.col("score") + offset)).exp())).alias("probability"))
    kept = reduce_batch(scored, k=5, tail_min_share=0.0)
    assert (kept[S.POPULARITY_BUCKET] != "tail").all()
    by_logit = top_k(scored, k=5)
    assert (by_logit[S.POPULARITY_BUCKET] == "tail").all()
