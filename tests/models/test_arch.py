from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from longtail.models import ConversionModel, ModelConfig
from longtail.models.arch import InteractionArch, SequenceArch

pytestmark = pytest.mark.unit


def _cfg(**kw: object) -> ModelConfig:
    base: dict[str, object] = {
        "n_dense": 3,
        "category_vocab_size": 5,
        "hash_buckets_user": 11,
        "hash_buckets_item": 13,
        "embedding_dim": 8,
    }
    return ModelConfig(**{**base, **kw})  # type: ignore[arg-type]


def _batch(b: int = 4, n: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    batch = {
        "user": torch.randint(0, 11, (b,), generator=g),
        "item": torch.randint(0, 13, (b,), generator=g),
        "category": torch.randint(0, 5, (b,), generator=g),
        "dense": torch.randn(b, 3, generator=g),
    }
    if n:
        batch["recent_items"] = torch.randint(0, 13, (b, n), generator=g)
    return batch


def test_model_returns_one_logit_per_row_and_is_seeded() -> None:
    torch.manual_seed(3)
    a = ConversionModel(_cfg())(_batch())
    torch.manual_seed(3)
    b = ConversionModel(_cfg())(_batch())
    assert a.shape == (4,)
    assert_close(a, b)


def test_interaction_arch_emits_dense_vector_then_pairwise_dots() -> None:
    v = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])]
    out = InteractionArch(3)(v)  # B=1, F=3, D=2
    # [v0, <v0,v1>, <v0,v2>, <v1,v2>]
    assert_close(out, torch.tensor([[1.0, 2.0, 11.0, 2.0, 4.0]]))


def test_interaction_arch_matches_the_batched_gram_matrix() -> None:
    torch.manual_seed(1)
    stacked = torch.randn(64, 5, 8)
    rows, cols = torch.triu_indices(5, 5, offset=1)
    gram = torch.bmm(stacked, stacked.transpose(1, 2))[:, rows, cols]
    out = InteractionArch(5)(list(stacked.unbind(1)))
    assert_close(out, torch.cat([stacked[:, 0], gram], dim=1))


def test_interaction_arch_rejects_the_wrong_number_of_vectors() -> None:
    with pytest.raises(ValueError, match=r"expected 4 feature vectors\. Got 3 instead\."):
        InteractionArch(4)([torch.zeros(2, 3)] * 3)


def test_sequence_arch_gives_zero_for_users_without_history() -> None:
    torch.manual_seed(0)
    arch = SequenceArch(_cfg(sequence_length=4))
    items = torch.tensor([[0, 0, 0, 0], [0, 0, 3, 5]])
    out = arch(items)
    assert out.shape == (2, 8)
    assert_close(out[0], torch.zeros(8))
    assert out[1].abs().sum() > 0


def test_model_with_sequence_uses_recent_items() -> None:
    torch.manual_seed(0)
    model = ConversionModel(_cfg(sequence_length=4))
    batch = _batch(n=4)
    changed = {**batch, "recent_items": torch.zeros_like(batch["recent_items"])}
    assert not torch.allclose(model(batch), model(changed))


def test_sparse_id_tables_emit_sparse_gradients_and_dense_option_does_not() -> None:
    model = ConversionModel(_cfg())
    model(_batch()).sum().backward()
    assert all(p.grad is not None and p.grad.is_sparse for p in model.sparse_parameters())
    assert all(p.grad is None or not p.grad.is_sparse for p in model.dense_parameters())
    dense = ConversionModel(_cfg(sparse_ids=False))
    assert dense.sparse_parameters() == []
    assert len(dense.dense_parameters()) == len(list(dense.parameters()))
