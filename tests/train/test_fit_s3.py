"""Integration: resample then fit on Ray with the data directory in an object store.

The splits are pushed from a local folder that is then deleted, so every read of the
Ray stages (the driver's, the Ray Data workers', the Ray Train workers') goes to the
S3 server (SeaweedFS on loopback); the model comes back only through the store.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.fs as pafs
import pytest

from longtail.artifacts import CurrentModel, ModelManifest
from longtail.config import ResamplingConfig, config_from_dict
from longtail.errors import StageError
from longtail.models import load_model
from longtail.paths import Layout
from longtail.resampling import resample_train_split
from longtail.storage import DataStore
from longtail.synthetic import make_training_rows, write_splits
from longtail.train import fit, resolve_inputs

pytestmark = pytest.mark.integration


def _cwd() -> str:
    return os.getcwd()


def test_resample_then_fit_touch_only_the_object_store(
    ray_session: Any, s3_store: DataStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = Layout(tmp_path / "push")
    write_splits(staging, make_training_rows(n_rows=6_000, seed=5, recent_items=0))
    s3_store.push(staging.root, ["training"])
    shutil.rmtree(staging.root)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)

    sampling = ResamplingConfig(strategy="random_under", params={"sampling_strategy": 0.2})
    resample_train_split(s3_store, sampling, seed=3)
    cfg = config_from_dict(
        {
            "seed": 11,
            "resampling": {"strategy": "random_under"},
            "train": {
                "epochs": 1,
                "batch_size": 256,
                "hash_buckets_user": 500,
                "hash_buckets_item": 500,
            },
        }
    )
    result = fit(s3_store, cfg, version="v-s3")

    layout = s3_store.layout
    assert result.location == f"s3://{layout.model('v-s3')}"
    current = s3_store.read_artifact(CurrentModel, layout.current_model)
    assert current.version == "v-s3"
    manifest = s3_store.read_artifact(ModelManifest, layout.model_manifest("v-s3"))
    # Trained on the resampled rows, with their prior correction.
    assert manifest.strategy == "random_under"
    assert manifest.class_counts is not None
    assert manifest.class_counts["positive"] * 5 >= manifest.class_counts["negative"] * 0.9
    # Ray Train's checkpoints lived in the store; no object of them is left once saved.
    runs = s3_store.filesystem.get_file_info(
        pafs.FileSelector(str(layout.ray_runs), allow_not_found=True, recursive=True)
    )
    assert [r.path for r in runs] == []
    # Nothing local: not in the driver's folder, not in the Ray workers' one.
    assert list(work.iterdir()) == []
    assert list(tmp_path.iterdir()) == [work]
    worker_cwd = ray_session.get(ray_session.remote(_cwd).remote())
    assert not (Path(worker_cwd) / s3_store.bucket).exists()

    # Pulled back, the model loads and scores the test split as the fit did.
    pulled = tmp_path / "pulled"
    s3_store.pull(pulled, ["models", "training"])
    model = load_model(Layout(pulled).models)
    test = pl.read_parquet(Layout(pulled).split("test"))
    assert model.manifest.version == "v-s3"
    probabilities = model.predict(test).probabilities
    assert probabilities.shape == (test.height,)
    assert ((probabilities > 0) & (probabilities < 1)).all()


def test_splits_missing_from_the_store_say_how_to_push_them(s3_store: DataStore) -> None:
    with pytest.raises(StageError, match=r"missing split s3://.*validation\.parquet.*--push"):
        resolve_inputs(s3_store, strategy="smote")
