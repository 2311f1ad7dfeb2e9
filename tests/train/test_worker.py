from __future__ import annotations

import pytest
import torch

from longtail.config import TrainConfig
from longtail.train.worker import WorkerConfig, _ShardCache

pytestmark = pytest.mark.unit


def _shard(n: int, batch: int) -> list[dict[str, torch.Tensor]]:
    rows = torch.arange(n)
    return [
        {"label": rows[i : i + batch].float(), "item": rows[i : i + batch] * 10}
        for i in range(0, n, batch)
    ]


def test_cached_shard_gives_every_row_once_per_epoch_in_a_seeded_order() -> None:
    cache = _ShardCache(torch.device("cpu"))
    cache.load(_shard(10, batch=4))
    first = list(cache.batches(batch_size=3, seed=1))
    assert [b["label"].shape[0] for b in first] == [3, 3, 3, 1]
    labels = torch.cat([b["label"] for b in first])
    assert sorted(labels.tolist()) == list(range(10))
    # Rows stay whole: every column is gathered with the same index.
    torch.testing.assert_close(torch.cat([b["item"] for b in first]), labels.long() * 10)
    again = torch.cat([b["label"] for b in cache.batches(batch_size=3, seed=1)])
    other = torch.cat([b["label"] for b in cache.batches(batch_size=3, seed=2)])
    torch.testing.assert_close(again, labels)
    assert not torch.equal(other, labels)


def test_worker_config_takes_the_cache_limit_from_train() -> None:
    wc = WorkerConfig.from_train(
        TrainConfig(cache_train_rows=123),
        model={},
        loss="bce",
        n_negative=1,
        n_positive=1,
        epochs=1,
        learning_rate=0.1,
        seed=0,
    )
    assert wc.cache_train_rows == 123
    assert WorkerConfig.from_dict(wc.to_dict()) == wc
