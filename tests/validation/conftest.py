"""Fixtures of tests/validation: a data directory of clean, hand-made tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from longtail.config import Config
from longtail.paths import Layout
from tests.validation.validation_data import Tables, clean_tables, make_config, write_tables


@pytest.fixture
def dataset(tmp_path: Path) -> Callable[..., Config]:
    """Write the clean tables (after ``mutate``) and return a config pointing at them."""

    def build(mutate: Callable[[Tables], None] | None = None, **validation: Any) -> Config:
        tables = clean_tables()
        if mutate is not None:
            mutate(tables)
        data_dir = tmp_path / "data"
        write_tables(Layout(data_dir), tables)
        return make_config(data_dir, **validation)

    return build
