from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from longtail.config import TrainConfig
from longtail.errors import StageError
from longtail.models.features import encode_arrow, fit_feature_spec
from longtail.paths import Layout
from longtail.schema import LABEL
from longtail.synthetic import make_training_rows, write_splits
from longtail.train.worker import (
    DirectRead,
    WorkerConfig,
    _Prefetch,
    _ShardCache,
    validation_metric,
)

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


def test_an_epoch_gathered_ahead_in_the_background_gives_the_same_batches_as_gathering_each() -> (
    None
):
    rows = 2_503
    shard = {
        "label": torch.arange(rows).float(),
        "dense": torch.randn(rows, 7),
        "item": torch.randint(0, 1_000, (rows,)),
    }
    gathered_each = _ShardCache(torch.device("cpu"))
    gathered_each.load([shard])
    ahead = _ShardCache(torch.device("cpu"))
    ahead.load([shard])
    # Epoch 1 gathers its batches and the next epoch's copy in the background; epoch 2
    # slices that copy; epoch 3 has no copy asked for and gathers again.
    epochs = [
        list(ahead.batches(batch_size=256, seed=11, next_seed=21)),
        list(ahead.batches(batch_size=256, seed=21, next_seed=None)),
        list(ahead.batches(batch_size=256, seed=31)),
    ]
    assert not ahead._shuffled  # every copy gathered ahead was used
    for seed, got in zip((11, 21, 31), epochs, strict=True):
        want = list(gathered_each.batches(batch_size=256, seed=seed))
        assert len(got) == len(want) == 10
        for g, w in zip(got, want, strict=True):
            assert g.keys() == w.keys()
            for key in w:
                assert torch.equal(g[key], w[key])
    first, second = (torch.cat([b["label"] for b in e]) for e in epochs[:2])
    assert not torch.equal(first, second)


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


def _direct_read(
    tmp_path: Path, *, n_rows: int, seed: int, sequence_length: int
) -> tuple[dict[str, Path], pl.DataFrame, DirectRead]:
    """Written splits, their train frame and a direct read of them with a fitted spec."""
    paths = write_splits(
        Layout(tmp_path), make_training_rows(n_rows=n_rows, seed=seed, recent_items=3)
    )
    train = pl.read_parquet(paths["train"])
    spec = fit_feature_spec(
        train, hash_buckets_user=100, hash_buckets_item=100, sequence_length=sequence_length
    )
    read = DirectRead(
        train_files=(str(paths["train"]),), validation=str(paths["validation"]), spec=spec
    )
    return paths, train, read


def test_direct_read_gives_each_worker_an_equal_disjoint_share_and_all_of_validation(
    tmp_path: Path,
) -> None:
    paths, train, read = _direct_read(tmp_path, n_rows=3_001, seed=2, sequence_length=3)
    spec = read.spec
    whole = read.train_shard(0, 1)
    expected = encode_arrow(train.to_arrow(), spec, label=LABEL)
    assert set(whole) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(whole[key].numpy(), value)
    # Two workers: equal shares (DDP needs the same steps), disjoint, in file order.
    first, second = read.train_shard(0, 2), read.train_shard(1, 2)
    share = train.height // 2
    assert first["label"].shape[0] == second["label"].shape[0] == share
    np.testing.assert_array_equal(first["item"].numpy(), expected["item"][:share])
    np.testing.assert_array_equal(second["item"].numpy(), expected["item"][share : 2 * share])
    batches = read.validation_batches(batch_size=500, device=torch.device("cpu"))
    labels = torch.cat([b["label"] for b in batches()])
    validation = pl.read_parquet(paths["validation"])
    np.testing.assert_array_equal(labels.numpy(), validation[LABEL].cast(pl.Float32).to_numpy())
    # A second pass gives the same batches (validation is read once, scored every epoch).
    torch.testing.assert_close(torch.cat([b["label"] for b in batches()]), labels)


def test_direct_read_reads_only_what_encode_needs_and_names_a_missing_column(
    tmp_path: Path,
) -> None:
    # Without a sequence the recent-items list is not read, nor the keys and buckets.
    _, train, read = _direct_read(tmp_path, n_rows=500, seed=4, sequence_length=0)
    spec = read.spec
    table = read._read(read.train_files)
    assert table.column_names == [*spec.columns, LABEL]
    assert "user_recent_items" not in table.column_names and train.width > table.num_columns
    with_sequence = fit_feature_spec(
        train, hash_buckets_user=100, hash_buckets_item=100, sequence_length=3
    )
    assert "user_recent_items" in with_sequence.columns
    # A split that lacks a feature the spec was fitted with is refused by name.
    lacking = tmp_path / "lacking.parquet"
    train.drop(spec.dense_columns[0]).write_parquet(lacking)
    broken = DirectRead(train_files=(str(lacking),), validation=str(lacking), spec=spec)
    with pytest.raises(StageError, match=spec.dense_columns[0]):
        broken.train_shard(0, 1)


@dataclass(frozen=True)
class _GatedRead(DirectRead):
    """A direct read whose train share waits for the test to open a gate."""

    gate: threading.Event = field(default_factory=threading.Event)
    threads: list[str] = field(default_factory=list)

    def train_shard(self, rank: int, world: int) -> dict[str, torch.Tensor]:
        self.threads.append(threading.current_thread().name)
        if not self.gate.wait(timeout=30):
            msg = "the gate was never opened"
            raise StageError(msg)
        return super().train_shard(rank, world)


def test_prefetch_reads_in_the_background_while_the_worker_builds_and_gives_the_same_rows(
    tmp_path: Path,
) -> None:
    _, _, read = _direct_read(tmp_path, n_rows=800, seed=5, sequence_length=3)
    gated = _GatedRead(
        train_files=read.train_files,
        validation=read.validation,
        spec=read.spec,
    )
    # The constructor returns while the read waits: the read runs in another thread.
    prefetch = _Prefetch(gated, rank=0, world=1, val_batch_size=256, device=torch.device("cpu"))
    gated.gate.set()
    shard = prefetch.train_shard()
    assert gated.threads and gated.threads[0] != threading.current_thread().name
    expected = read.train_shard(0, 1)
    assert set(shard) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(shard[key], value, rtol=0, atol=0)
    cpu = torch.device("cpu")
    labels = torch.cat([b["label"] for b in prefetch.validation()()])
    direct = torch.cat([b["label"] for b in read.validation_batches(batch_size=256, device=cpu)()])
    torch.testing.assert_close(labels, direct, rtol=0, atol=0)


def test_prefetch_raises_a_read_error_where_its_result_is_asked_for(tmp_path: Path) -> None:
    paths, train, read = _direct_read(tmp_path, n_rows=300, seed=6, sequence_length=0)
    lacking = tmp_path / "lacking.parquet"
    train.drop(read.spec.dense_columns[0]).write_parquet(lacking)
    broken = DirectRead(
        train_files=(str(lacking),), validation=str(paths["validation"]), spec=read.spec
    )
    prefetch = _Prefetch(broken, rank=0, world=1, val_batch_size=256, device=torch.device("cpu"))
    with pytest.raises(StageError, match=read.spec.dense_columns[0]):
        prefetch.train_shard()
    assert len(list(prefetch.validation()())) == -(
        -pl.read_parquet(paths["validation"]).height // 256
    )


def test_validation_metric_is_the_named_auc_of_float32_scores_and_nan_with_one_class() -> None:
    rng = np.random.default_rng(5)
    labels = (rng.random(2_000) < 0.05).astype(np.float32)
    scores = (rng.normal(size=2_000) + labels).astype(np.float32)  # logits, as the epochs give
    assert validation_metric("pr_auc", labels, scores) == pytest.approx(
        average_precision_score(labels, scores), rel=1e-12
    )
    assert validation_metric("roc_auc", labels, scores) == pytest.approx(
        roc_auc_score(labels, scores), rel=1e-12
    )
    assert np.isnan(validation_metric("pr_auc", np.zeros(3, np.float32), scores[:3]))
