"""The conversion model: role-named parts composed in a forward of a few lines.

Shapes: ``B`` rows, ``D`` embedding size, ``F`` feature vectors, ``N`` recent items.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "ConversionModel",
    "DenseArch",
    "InteractionArch",
    "ModelConfig",
    "OverArch",
    "SequenceArch",
    "SparseArch",
]


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the model; saved in the manifest so loading rebuilds the same module."""

    n_dense: int
    category_vocab_size: int
    hash_buckets_user: int
    hash_buckets_item: int
    embedding_dim: int = 16
    sequence_length: int = 0
    sequence_layers: int = 1
    sequence_heads: int = 2
    over_hidden: tuple[int, ...] = (64, 32)
    sparse_ids: bool = True

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out = asdict(self)
        out["over_hidden"] = list(self.over_hidden)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_json` output."""
        return cls(**{**raw, "over_hidden": tuple(raw["over_hidden"])})


class SparseArch(nn.Module):
    """Hashed user and item id embeddings and the category embedding: ``B -> 3 x (B x D)``.

    Index 0 of each table is padding / unknown. The id tables may emit sparse
    gradients (``sparse=True``) for SparseAdam; the small category table is dense.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.embedding_dim
        self.user = nn.Embedding(cfg.hash_buckets_user, d, sparse=cfg.sparse_ids)
        self.item = nn.Embedding(cfg.hash_buckets_item, d, sparse=cfg.sparse_ids)
        self.category = nn.Embedding(cfg.category_vocab_size, d)
        for table in (self.user, self.item, self.category):
            nn.init.normal_(table.weight, std=0.05)

    def forward(
        self, user: torch.Tensor, item: torch.Tensor, category: torch.Tensor
    ) -> list[torch.Tensor]:
        """Return the user, item and category embeddings, three ``B x D`` tensors."""
        return [self.user(user), self.item(item), self.category(category)]


class DenseArch(nn.Module):
    """Standardized dense features through an MLP: ``B x F_dense -> B x D``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.embedding_dim
        self.mlp = nn.Sequential(
            nn.Linear(max(cfg.n_dense, 1), 2 * d), nn.ReLU(), nn.Linear(2 * d, d)
        )
        self.n_dense = cfg.n_dense

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        """Return ``B x D``; a frame without dense columns feeds one zero column."""
        if self.n_dense == 0:
            dense = dense.new_zeros((dense.shape[0], 1))
        out: torch.Tensor = self.mlp(dense)
        return out


class SequenceArch(nn.Module):
    """A small BERT-style encoder over the user's last ``N`` viewed items: ``B x N -> B x D``.

    Built from a :class:`transformers.BertConfig` and trained from scratch (nothing
    is downloaded). Item ids are hashed like the item table; 0 is padding. The
    output is the mean of the non-padding positions, 0 for a user without history.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        d = cfg.embedding_dim
        heads = cfg.sequence_heads if d % cfg.sequence_heads == 0 else 1
        bert_cfg = BertConfig(
            vocab_size=cfg.hash_buckets_item,
            hidden_size=d,
            num_hidden_layers=cfg.sequence_layers,
            num_attention_heads=heads,
            intermediate_size=2 * d,
            max_position_embeddings=max(cfg.sequence_length, 1),
            type_vocab_size=1,
            pad_token_id=0,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        self.encoder = BertModel(bert_cfg, add_pooling_layer=False)

    def forward(self, recent_items: torch.Tensor) -> torch.Tensor:
        """Return the masked mean of the encoder's last hidden states, ``B x D``."""
        mask = (recent_items != 0).long()
        hidden = self.encoder(input_ids=recent_items, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled: torch.Tensor = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return pooled


class InteractionArch(nn.Module):
    """Pairwise dot products of the feature vectors (DLRM): ``F x (B x D) -> B x (D + F(F-1)/2)``.

    The first vector (the dense one) is passed through beside the dot products.
    With F = 4 or 5 the F(F-1)/2 row-wise products are cheaper one by one than a
    batched ``B x F x F`` matmul plus a gather of its upper triangle (2.3x on a
    4,096-row pass, one thread: ``docs/scoring.md``), and the vectors need no stacking.
    """

    def __init__(self, n_vectors: int) -> None:
        super().__init__()
        self.n_vectors = n_vectors
        self.pairs = [(i, j) for i in range(n_vectors) for j in range(i + 1, n_vectors)]

    def forward(self, vectors: list[torch.Tensor]) -> torch.Tensor:
        """Return ``[vectors[0], <v_i, v_j> for i < j]``."""
        if len(vectors) != self.n_vectors:
            msg = f"expected {self.n_vectors} feature vectors. Got {len(vectors)} instead."
            raise ValueError(msg)
        dots = [(vectors[i] * vectors[j]).sum(dim=1, keepdim=True) for i, j in self.pairs]
        return torch.cat([vectors[0], *dots], dim=1)

    def out_features(self, d: int) -> int:
        """Width of the output for embedding size ``d``."""
        return d + self.n_vectors * (self.n_vectors - 1) // 2


class OverArch(nn.Module):
    """MLP head to one logit: ``B x H -> B``."""

    def __init__(self, in_features: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits, ``B``."""
        out: torch.Tensor = self.mlp(x)
        return out.squeeze(-1)


class ConversionModel(nn.Module):
    """Conversion model returning logits; the loss and calibration live outside."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.sparse_arch = SparseArch(cfg)
        self.dense_arch = DenseArch(cfg)
        self.sequence_arch = SequenceArch(cfg) if cfg.sequence_length > 0 else None
        n_vectors = 4 + (1 if self.sequence_arch is not None else 0)
        self.interaction_arch = InteractionArch(n_vectors)
        self.over_arch = OverArch(
            self.interaction_arch.out_features(cfg.embedding_dim), cfg.over_hidden
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Map a batch from :func:`longtail.models.features.encode` (as tensors) to logits ``B``."""
        vectors = [self.dense_arch(batch["dense"])]
        vectors += self.sparse_arch(batch["user"], batch["item"], batch["category"])
        if self.sequence_arch is not None:
            vectors.append(self.sequence_arch(batch["recent_items"]))
        logits: torch.Tensor = self.over_arch(self.interaction_arch(vectors))
        return logits

    def sparse_parameters(self) -> list[torch.Tensor]:
        """Return the id tables that emit sparse gradients (empty when ``sparse_ids`` is off)."""
        if not self.cfg.sparse_ids:
            return []
        return [self.sparse_arch.user.weight, self.sparse_arch.item.weight]

    def dense_parameters(self) -> list[torch.Tensor]:
        """Every other parameter."""
        sparse = {id(p) for p in self.sparse_parameters()}
        return [p for p in self.parameters() if id(p) not in sparse]
