"""The contract every strategy keeps, in process: counts, columns, dtypes, seeds, safety."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest

from longtail.config import ResamplingConfig
from longtail.errors import ConfigError, StageError
from longtail.resampling import STRATEGIES, FrameSampler, check_params, resample_frame
from longtail.schema import (
    CATEGORICAL_COLUMNS,
    LABEL,
    POPULARITY_BUCKET,
    SPLIT,
    TRAINING_KEYS,
    dense_feature_columns,
)
from longtail.synthetic import make_train_frame

Counts = dict[int, int]
# strategy -> (params, check(before, after)) for one group of rows.
RATIO = 0.5


def _over(before: Counts, after: Counts) -> bool:
    return after[0] == before[0] and after[1] == int(RATIO * before[0])


def _under(before: Counts, after: Counts) -> bool:
    return after[1] == before[1] and after[0] == int(before[1] / RATIO)


CASES: dict[str, tuple[dict[str, Any], Callable[[Counts, Counts], bool]]] = {
    "none": ({}, lambda b, a: a == b),
    "random_under": ({"sampling_strategy": RATIO}, _under),
    "random_over": ({"sampling_strategy": RATIO}, _over),
    "smote": ({"sampling_strategy": RATIO}, _over),
    "borderline_smote": ({"sampling_strategy": RATIO}, _over),
    # ADASYN draws per-row counts that round; it is close to the ratio, not exact.
    "adasyn": (
        {"sampling_strategy": RATIO},
        lambda b, a: a[0] == b[0] and abs(a[1] - RATIO * b[0]) <= 0.05 * RATIO * b[0],
    ),
    "tomek": ({}, lambda b, a: a[1] == b[1] and a[0] <= b[0]),
    "cluster_centroids": ({"sampling_strategy": RATIO}, _under),
    "smote_tomek": (
        {"sampling_strategy": RATIO},
        lambda b, a: a[0] <= b[0] and b[1] < a[1] <= int(RATIO * b[0]),
    ),
}


def _counts(frame: pl.DataFrame) -> Counts:
    labels = frame.get_column(LABEL).to_numpy()
    return {0: int((labels == 0).sum()), 1: int((labels == 1).sum())}


def _canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


@pytest.mark.unit
def test_every_strategy_has_a_contract_case() -> None:
    assert set(CASES) == set(STRATEGIES)


@pytest.mark.unit
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_strategy_contract(strategy: str, train_frame: pl.DataFrame) -> None:
    params, check = CASES[strategy]
    cfg = ResamplingConfig(strategy=strategy, params=params, max_group_rows=100_000)
    out, report = resample_frame(train_frame, cfg, seed=5)

    # Columns and dtypes are kept, in order.
    assert out.schema == train_frame.schema
    # Class counts as requested, in every stratum (the sampler runs per bucket).
    for bucket in train_frame.get_column(POPULARITY_BUCKET).unique().to_list():
        before = _counts(train_frame.filter(pl.col(POPULARITY_BUCKET) == bucket))
        after = _counts(out.filter(pl.col(POPULARITY_BUCKET) == bucket))
        assert check(before, after), (bucket, before, after)
        assert report.strata[bucket].before == before
        assert report.strata[bucket].after == after
    # Deterministic with a seed, different with another (where the strategy is random).
    again, _ = resample_frame(train_frame, cfg, seed=5)
    assert _canonical(again).equals(_canonical(out))
    # Every row is a train row; ids, categoricals and times are real ones.
    assert out.get_column(SPLIT).unique().to_list() == ["train"]
    for name in sorted(CATEGORICAL_COLUMNS - {LABEL}):
        assert set(out.get_column(name).unique().to_list()) <= set(
            train_frame.get_column(name).unique().to_list()
        ), name
    # Rows not counted as synthetic are input rows, unchanged; the others are new.
    unseen = out.join(train_frame, on=train_frame.columns, how="anti", nulls_equal=True)
    assert unseen.height == sum(report.synthetic.values())


@pytest.mark.unit
@pytest.mark.parametrize("strategy", ["random_under", "smote", "adasyn", "cluster_centroids"])
def test_seed_changes_the_draw(strategy: str, train_frame: pl.DataFrame) -> None:
    cfg = ResamplingConfig(strategy=strategy, params={"sampling_strategy": RATIO})
    one, _ = resample_frame(train_frame, cfg, seed=1)
    two, _ = resample_frame(train_frame, cfg, seed=2)
    assert not _canonical(one).equals(_canonical(two))


@pytest.mark.unit
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("bad_split", ["validation", "test"])
def test_sampler_refuses_validation_and_test_rows(strategy: str, bad_split: str) -> None:
    frame = pl.concat(
        [make_train_frame(300, seed=1), make_train_frame(50, seed=2, split=bad_split)]
    )
    with pytest.raises(StageError, match="only train rows may be resampled"):
        FrameSampler(strategy, seed=0).fit_resample(frame)
    with pytest.raises(StageError, match=bad_split):
        resample_frame(frame, ResamplingConfig(strategy=strategy), seed=0)


@pytest.mark.unit
def test_synthetic_rows_take_categoricals_from_a_real_row_and_keep_dtypes() -> None:
    frame = make_train_frame(2_000, seed=3)
    sampler = FrameSampler("smote", seed=3)
    out = sampler.fit_resample(frame)
    n_new = sampler.n_synthetic_[1]
    assert n_new == _counts(frame)[0] - _counts(frame)[1]
    made = out.tail(n_new)
    positives = frame.filter(pl.col(LABEL) == 1)
    # Every synthetic row's keys and categoricals are those of one real positive row.
    fixed = [c for c in frame.columns if c in CATEGORICAL_COLUMNS]
    assert made.select(fixed).join(positives.select(fixed), on=fixed, how="anti").height == 0
    # Dense values are new (interpolated) and within the positives' range.
    dense = dense_feature_columns(frame)
    for name in dense:
        lo, hi = positives.get_column(name).min(), positives.get_column(name).max()
        col = made.get_column(name).drop_nulls()
        assert col.min() >= lo and col.max() <= hi, name  # type: ignore[operator]
    assert made.select(dense).join(positives.select(dense), on=dense, how="anti").height > 0
    # Integer features stay whole numbers of the same dtype.
    assert made.schema == frame.schema


@pytest.mark.unit
def test_synthetic_rows_keep_their_donor_nulls() -> None:
    frame = make_train_frame(2_000, seed=4)
    nullable = [c for c in frame.columns if frame.get_column(c).null_count() > 0]
    assert nullable
    out = FrameSampler("smote", seed=4).fit_resample(frame)
    positives = frame.filter(pl.col(LABEL) == 1)
    for name in nullable:
        share = out.filter(pl.col(LABEL) == 1).get_column(name).null_count() / _counts(out)[1]
        expected = positives.get_column(name).null_count() / positives.height
        assert abs(share - expected) < 0.15, name
        assert out.get_column(name).null_count() >= frame.get_column(name).null_count()


@pytest.mark.unit
def test_small_groups_pass_through_unchanged() -> None:
    frame = make_train_frame(200, seed=5, positive_rate=0.01)  # 2 positives, k_neighbors=5
    out = FrameSampler("smote", seed=0).fit_resample(frame)
    assert out.equals(frame)


@pytest.mark.unit
def test_unknown_strategy_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError, match=r"Got 'smoteish' instead"):
        check_params("smoteish", {})


@pytest.mark.unit
def test_unknown_param_key_names_the_strategy_and_the_key() -> None:
    with pytest.raises(ConfigError, match=r"strategy 'smote' has no parameter 'k_neighbours'"):
        check_params("smote", {"k_neighbours": 3})


@pytest.mark.unit
def test_bad_param_value_names_the_key() -> None:
    with pytest.raises(ValueError, match="k_neighbors"):
        check_params("smote", {"k_neighbors": -1})
    with pytest.raises(ConfigError, match="estimator"):
        check_params("cluster_centroids", {"estimator": "dbscan"})


@pytest.mark.unit
def test_params_are_refused_for_none() -> None:
    with pytest.raises(ConfigError, match="'none' has no parameter 'sampling_strategy'"):
        check_params("none", {"sampling_strategy": 0.5})


@pytest.mark.unit
def test_labels_other_than_zero_and_one_are_refused() -> None:
    frame = make_train_frame(100, seed=1).with_columns(pl.lit(2).cast(pl.Int64).alias(LABEL))
    with pytest.raises(StageError, match=r"Got \[2\] instead"):
        FrameSampler("random_under").fit_resample(frame)


@pytest.mark.unit
def test_output_is_independent_of_input_row_order(train_frame: pl.DataFrame) -> None:
    cfg = ResamplingConfig(strategy="smote", params={"sampling_strategy": RATIO})
    shuffled = train_frame.sample(fraction=1.0, shuffle=True, seed=9)
    one, _ = resample_frame(train_frame, cfg, seed=1)
    two, _ = resample_frame(shuffled, cfg, seed=1)
    assert _canonical(one).equals(_canonical(two))
    assert set(TRAINING_KEYS) <= set(one.columns)
    assert np.isfinite(one.select(dense_feature_columns(one)).fill_null(0).to_numpy()).all()


def _nearer_parent_holds(x: np.ndarray, y: np.ndarray, new: np.ndarray, donors: np.ndarray) -> bool:
    """Each new row lies on a segment from its donor towards another real row, nearer the donor."""
    for row, d in zip(new, donors, strict=True):
        others = x[(np.arange(len(x)) != d)]
        span = others - x[d]
        step = row - x[d]
        # t with step = t * span, for the one row whose segment carries the point
        t = (span @ step) / np.maximum((span * span).sum(axis=1), 1e-300)
        on_line = np.abs(span * t[:, None] - step).max(axis=1) < 1e-9
        if not (on_line & (t >= -1e-12) & (t <= 0.5 + 1e-12)).any() and np.abs(step).max() > 1e-12:
            return False
    return True


@pytest.mark.unit
@pytest.mark.parametrize("kind", ["smote", "borderline-1", "borderline-2"])
def test_smote_family_donor_is_the_nearer_real_parent(kind: str) -> None:
    from imblearn.over_sampling import SMOTE, BorderlineSMOTE

    from longtail.resampling.strategies import _ParentLog

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = (np.arange(400) < 40).astype(np.int64)
    x[y == 1] += 0.8  # overlapping classes, so Borderline-SMOTE finds danger rows
    sampler = (
        SMOTE(random_state=0) if kind == "smote" else BorderlineSMOTE(random_state=0, kind=kind)
    )
    log = _ParentLog(sampler)
    x_res, _ = sampler.fit_resample(x, y)
    donors = log.donors(x, y)
    assert donors is not None
    new = x_res[len(x) :]
    assert donors.shape == (len(new),)
    assert (y[donors] == 1).all()  # a real row of the synthetic row's class
    assert _nearer_parent_holds(x, y, new, donors)
