from __future__ import annotations

from pathlib import Path

import pytest

from longtail.errors import StageError
from longtail.paths import Layout
from longtail.synthetic import make_training_rows, write_splits
from longtail.train import resolve_inputs
from tests.train.undersampled import write_undersampled

pytestmark = pytest.mark.unit


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    out = Layout(tmp_path)
    write_splits(out, make_training_rows(n_rows=400, seed=1, recent_items=0))
    return out


def test_missing_splits_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(StageError, match=r"validation\.parquet"):
        resolve_inputs(Layout(tmp_path), strategy="none")


def test_resampled_train_comes_with_its_report_and_untouched_evaluation_splits(
    layout: Layout,
) -> None:
    write_undersampled(
        layout, strategy="under", negative_rate={"head": 0.5, "torso": 0.5, "tail": 1.0}
    )
    inputs = resolve_inputs(layout, strategy="under")
    assert inputs.strategy == "under"
    assert [p.name for p in inputs.train_files] == ["part-000.parquet", "part-001.parquet"]
    assert inputs.validation == layout.training / "validation.parquet"
    assert inputs.test == layout.training / "test.parquet"
    assert inputs.sampling_report is not None
    assert inputs.sampling_report.correction_by == "item_popularity_bucket"


def test_strategy_without_folder_falls_back_to_plain_train(layout: Layout) -> None:
    inputs = resolve_inputs(layout, strategy="smote")
    assert inputs.strategy == "none"
    assert inputs.train_files == (layout.training / "train.parquet",)
    assert inputs.sampling_report is None


def test_resampled_train_without_report_is_refused(layout: Layout) -> None:
    folder = write_undersampled(
        layout, strategy="under", negative_rate={"head": 1.0, "torso": 1.0, "tail": 1.0}
    )
    (folder / "sampling_report.json").unlink()
    with pytest.raises(StageError, match=r"sampling_report\.json"):
        resolve_inputs(layout, strategy="under")
