from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from longtail.errors import StageError
from longtail.models import (
    Calibration,
    ConversionModel,
    FeatureSpec,
    ModelConfig,
    fit_feature_spec,
    load_model,
    save_model,
)
from longtail.synthetic import make_training_rows

pytestmark = pytest.mark.unit


def _model(spec: FeatureSpec, *, buckets: int, dim: int, seq: int, seed: int) -> ConversionModel:
    torch.manual_seed(seed)
    return ConversionModel(
        ModelConfig(
            n_dense=len(spec.dense_columns),
            category_vocab_size=spec.category_vocab_size,
            hash_buckets_user=buckets,
            hash_buckets_item=buckets,
            embedding_dim=dim,
            sequence_length=seq,
        )
    )


def _saved(tmp_path: Path) -> tuple[Path, ConversionModel, pl.DataFrame]:
    rows = make_training_rows(n_rows=300, seed=2)
    spec = fit_feature_spec(rows, hash_buckets_user=64, hash_buckets_item=64, sequence_length=3)
    model = _model(spec, buckets=64, dim=8, seq=3, seed=0)
    cal = Calibration(offset_by="item_popularity_bucket", offsets={"head": 1.0, "*": 0.5})
    save_model(
        tmp_path / "models",
        version="v1",
        model=model,
        spec=spec,
        calibration=cal,
        extra={"strategy": "x", "loss": "bce"},
    )
    return tmp_path / "models", model, rows


def test_saved_model_is_safetensors_plus_manifest_and_current_pointer(tmp_path: Path) -> None:
    models, model, _ = _saved(tmp_path)
    folder = models / "v1"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.safetensors"]
    assert set(load_file(str(folder / "model.safetensors"))) == set(model.state_dict())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["features"]["dense_columns"]
    assert manifest["calibration"]["offsets"] == {"head": 1.0, "*": 0.5}
    assert json.loads((models / "current.json").read_text())["version"] == "v1"


def test_loaded_model_reproduces_logits_and_applies_calibration(tmp_path: Path) -> None:
    models, model, rows = _saved(tmp_path)
    loaded = load_model(models)  # follows current.json
    with torch.inference_mode():
        pred = loaded.predict(rows, batch_size=128)
    from longtail.models import encode
    from longtail.models.saved import to_tensors

    model.eval()
    with torch.inference_mode():
        expected = model(to_tensors(encode(rows, loaded.spec))).double().numpy()
    np.testing.assert_allclose(pred.logits, expected, rtol=1e-6)
    head = (rows["item_popularity_bucket"] == "head").to_numpy()
    np.testing.assert_allclose(
        pred.probabilities[head], 1 / (1 + np.exp(-(pred.logits[head] - 1.0))), rtol=1e-9
    )
    np.testing.assert_allclose(
        pred.probabilities[~head], 1 / (1 + np.exp(-(pred.logits[~head] - 0.5))), rtol=1e-9
    )


def test_load_model_rejects_missing_and_foreign_formats(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="no saved model"):
        load_model(tmp_path)
    models, _, _ = _saved(tmp_path)
    manifest = models / "v1" / "manifest.json"
    raw = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**raw, "format_version": 99}))
    with pytest.raises(StageError, match="format_version"):
        load_model(models / "v1")


def test_predict_scores_do_not_depend_on_the_rows_batched_with_them(tmp_path: Path) -> None:
    # Reruns batch rows differently (Ray Data bundles blocks as they arrive); a
    # row's logit must be bit-identical whatever shares its batch, or near-tied
    # items swap places between reruns.
    rows = make_training_rows(n_rows=5_000, seed=3)
    spec = fit_feature_spec(rows, hash_buckets_user=512, hash_buckets_item=512, sequence_length=4)
    model = _model(spec, buckets=512, dim=16, seq=4, seed=1)
    save_model(
        tmp_path / "models", version="v1", model=model, spec=spec,
        calibration=Calibration(), extra={},
    )  # fmt: skip
    loaded = load_model(tmp_path / "models")
    whole = loaded.predict(rows).logits
    for size in (123, 1_000, 4_097):
        parts = [loaded.predict(rows.slice(s, size)).logits for s in range(0, rows.height, size)]
        assert np.array_equal(np.concatenate(parts), whole), size
    order = np.random.default_rng(0).permutation(rows.height)
    shuffled = loaded.predict(rows[order]).logits
    assert np.array_equal(shuffled, whole[order])
