"""The tune report's reliability points: equal mass, so a rare label still draws a curve."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from longtail.metrics import reliability_bins


def equal_mass_bins(y: np.ndarray, p: np.ndarray, *, n_bins: int) -> pl.DataFrame:
    # What the tune report plots: the metrics' equal-mass (quantile) reliability bins.
    frame = pl.DataFrame({"label": y, "probability": p})
    return reliability_bins(frame, n_bins=n_bins, strategy="quantile")


def test_equal_mass_bins_hold_the_same_rows_where_equal_width_bins_collapse() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(0.5, 12.0, size=2_000)  # a 4% base rate: almost all mass below 0.1
    y = (rng.random(p.size) < p).astype(float)
    bins = equal_mass_bins(y, p, n_bins=10)
    assert bins.height == 10
    assert bins["count"].to_list() == [200] * 10
    assert bins["mean_probability"].is_sorted()
    # Equal-width bins of 0.1 would leave most points in one bin.
    assert np.bincount(np.minimum((p * 10).astype(int), 9)).max() > 0.8 * p.size
    # Each point is the mean of its own rows.
    order = np.argsort(p, kind="stable")
    assert bins["positive_rate"][0] == pytest.approx(y[order[:200]].mean())


def test_fewer_rows_than_bins_gives_one_point_per_row_and_bad_counts_are_refused() -> None:
    bins = equal_mass_bins(np.array([0.0, 1.0, 1.0]), np.array([0.2, 0.9, 0.5]), n_bins=10)
    assert bins["count"].to_list() == [1, 1, 1]
    assert bins["mean_probability"].to_list() == [0.2, 0.5, 0.9]
    with pytest.raises(ValueError, match="n_bins"):
        equal_mass_bins(np.array([0.0]), np.array([0.1]), n_bins=0)
