"""The project's Adam and SparseAdam against torch.optim's, bit for bit, without torch._dynamo."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from longtail.config import TrainConfig
from longtail.losses import bce
from longtail.models import ConversionModel, ModelConfig, encode, fit_feature_spec
from longtail.models.saved import to_tensors
from longtail.synthetic import make_training_rows
from longtail.train import build_optimizers
from longtail.train.optim import Adam, Optimizer, SparseAdam
from longtail.train.state import Progress, read_state, write_state


def _data(n: int = 2_000) -> tuple[dict[str, torch.Tensor], torch.Tensor, ModelConfig]:
    tc = TrainConfig()
    rows = make_training_rows(n_rows=n, n_users=200, n_items=100, recent_items=4, seed=3)
    spec = fit_feature_spec(rows, hash_buckets_user=257, hash_buckets_item=131, sequence_length=4)
    cfg = ModelConfig(
        n_dense=len(spec.dense_columns),
        category_vocab_size=spec.category_vocab_size,
        hash_buckets_user=257,
        hash_buckets_item=131,
        embedding_dim=8,
        sequence_length=spec.sequence_length,
        over_hidden=tuple(tc.over_hidden),
        sparse_ids=True,
    )
    x = to_tensors(encode(rows, spec))
    y = torch.from_numpy(rows["label"].cast(pl.Float32).to_numpy().copy())
    return x, y, cfg


def _train(
    model: ConversionModel,
    opts: Sequence[Optimizer | torch.optim.Optimizer],
    x: dict[str, torch.Tensor],
    y: torch.Tensor,
    steps: int,
) -> None:
    rng = np.random.default_rng(0)
    for _ in range(steps):
        idx = torch.from_numpy(rng.integers(0, y.shape[0], 64))
        logits = model({k: torch.index_select(v, 0, idx) for k, v in x.items()})
        loss = bce(logits, y[idx])
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        for o in opts:
            o.step()


def _torch_optimizers(model: ConversionModel, lr: float) -> list[torch.optim.Optimizer]:
    return [
        torch.optim.Adam(model.dense_parameters(), lr=lr, fused=True),
        torch.optim.SparseAdam(model.sparse_parameters(), lr=lr),
    ]


def _twin_models(cfg: ModelConfig) -> tuple[ConversionModel, ConversionModel]:
    torch.manual_seed(11)
    a = ConversionModel(cfg)
    b = ConversionModel(cfg)
    b.load_state_dict(a.state_dict())
    return a, b


def test_adam_and_sparse_adam_make_torch_optims_updates_bit_for_bit() -> None:
    x, y, cfg = _data()
    ours, theirs = _twin_models(cfg)
    lr = 0.01
    dense_before = [p.detach().clone() for p in ours.dense_parameters()]
    sparse_before = [p.detach().clone() for p in ours.sparse_parameters()]
    _train(ours, build_optimizers(ours, kind="sparse_adam", learning_rate=lr), x, y, steps=30)
    _train(theirs, _torch_optimizers(theirs, lr), x, y, steps=30)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # Both optimizers moved their parameters: the equality is not of two untouched models.
    for before, params in (
        (dense_before, ours.dense_parameters()),
        (sparse_before, ours.sparse_parameters()),
    ):
        assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))


def test_a_resumed_optimizer_continues_as_torch_optims_would(tmp_path: Path) -> None:
    x, y, cfg = _data()
    ours, theirs = _twin_models(cfg)
    lr = 0.01
    mine = build_optimizers(ours, kind="sparse_adam", learning_rate=lr)
    _train(ours, mine, x, y, steps=10)
    write_state(tmp_path, model=ours, best=ours.state_dict(), optimizers=mine, progress=Progress())
    resumed = ConversionModel(cfg)
    again = build_optimizers(resumed, kind="sparse_adam", learning_rate=lr)
    read_state(tmp_path, model=resumed, optimizers=again)
    _train(resumed, again, x, y, steps=10)
    ref = _torch_optimizers(theirs, lr)
    _train(theirs, ref, x, y, steps=10)
    _train(theirs, ref, x, y, steps=10)
    for (name, a), b in zip(
        resumed.state_dict().items(), theirs.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_the_optimizers_reject_the_wrong_kind_of_gradient_and_bad_settings() -> None:
    _, _, cfg = _data(300)
    model = ConversionModel(cfg)
    with pytest.raises(ValueError, match="learning rate"):
        Adam(model.dense_parameters(), lr=0.0)
    with pytest.raises(ValueError, match="at least one"):
        SparseAdam([], lr=0.1)
    with pytest.raises(ValueError, match="floating-point"):
        Adam([torch.zeros(3, dtype=torch.int64)], lr=0.1)
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="dense gradient"):
        SparseAdam([p], lr=0.1).step()
    q = torch.nn.Parameter(torch.zeros(3))
    q.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse gradient"):
        Adam([q], lr=0.1).step()


def test_training_steps_never_import_torch_dynamo() -> None:
    # A fresh interpreter: this test process may have imported it already.
    code = textwrap.dedent(
        """
        import sys
        import torch
        from longtail.models import ConversionModel, ModelConfig
        from longtail.train import build_optimizers
        cfg = ModelConfig(n_dense=2, category_vocab_size=5, hash_buckets_user=11,
                          hash_buckets_item=7, embedding_dim=4, sequence_length=0,
                          over_hidden=(4,), sparse_ids=True)
        model = ConversionModel(cfg)
        opts = build_optimizers(model, kind="sparse_adam", learning_rate=0.1)
        batch = {"dense": torch.ones(3, 2), "user": torch.tensor([1, 2, 3]),
                 "item": torch.tensor([1, 2, 3]), "category": torch.tensor([0, 1, 2])}
        model(batch).sum().backward()
        for o in opts:
            o.step()
            o.zero_grad()
            o.state_dict()
        print("torch._dynamo" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "False"
