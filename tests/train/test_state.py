from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from longtail.models import ConversionModel, ModelConfig
from longtail.train.state import Progress, read_best_weights, read_state, write_state
from longtail.train.worker import build_optimizers

pytestmark = pytest.mark.unit


def _model() -> ConversionModel:
    return ConversionModel(
        ModelConfig(
            n_dense=2,
            category_vocab_size=3,
            hash_buckets_user=7,
            hash_buckets_item=7,
            embedding_dim=4,
        )
    )


def _step(model: ConversionModel, opts: list[torch.optim.Optimizer]) -> None:
    batch = {
        "user": torch.tensor([1, 2]),
        "item": torch.tensor([3, 4]),
        "category": torch.tensor([0, 2]),
        "dense": torch.ones(2, 2),
    }
    for o in opts:
        o.zero_grad()
    model(batch).sum().backward()
    for o in opts:
        o.step()


def test_state_round_trip_resumes_identical_training(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _model()
    opts = build_optimizers(model, kind="sparse_adam", learning_rate=0.01)
    _step(model, opts)
    progress = Progress(epochs_done=1, best_metric=0.3, best_epoch=1)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    write_state(tmp_path, model=model, best=best, optimizers=opts, progress=progress)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.safetensors",
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
    ]

    torch.manual_seed(1)
    resumed = _model()
    resumed_opts = build_optimizers(resumed, kind="sparse_adam", learning_rate=0.01)
    got, got_best = read_state(tmp_path, model=resumed, optimizers=resumed_opts)
    assert got == progress
    _step(model, opts)
    _step(resumed, resumed_opts)
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert_close(a, b, msg=name)
    assert set(read_best_weights(tmp_path)[1]) == set(got_best)


def test_progress_stops_after_patience_epochs_without_improvement() -> None:
    p = Progress()
    assert p.record(0.2, epoch=1, patience=2) == (True, False)
    assert p.record(0.3, epoch=2, patience=2) == (True, False)
    assert p.record(0.25, epoch=3, patience=2) == (False, False)
    assert p.record(0.3, epoch=4, patience=2) == (False, True)
    assert (p.best_epoch, p.best_metric, p.epochs_done) == (2, 0.3, 4)


def test_progress_nan_never_beats_a_number() -> None:
    p = Progress()
    p.record(math.nan, epoch=1, patience=3)
    assert p.record(0.1, epoch=2, patience=3) == (True, False)
    assert p.record(math.nan, epoch=3, patience=3) == (False, False)


def test_dense_adam_refuses_a_sparse_model() -> None:
    from longtail.errors import ConfigError

    with pytest.raises(ConfigError, match="sparse_ids=False"):
        build_optimizers(_model(), kind="dense_adam", learning_rate=0.01)
