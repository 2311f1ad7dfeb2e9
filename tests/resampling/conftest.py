"""Fixtures for the resampling tests: a realistic small train split with ~2% positives."""

from __future__ import annotations

import polars as pl
import pytest

from longtail.synthetic import make_train_frame


@pytest.fixture(scope="module")
def train_frame() -> pl.DataFrame:
    """3,000 train rows, ~2% positives in each popularity bucket, some null features."""
    return make_train_frame(3_000, seed=11)
