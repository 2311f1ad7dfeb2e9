"""Training throughput: the default optimizer setup against a plain dense-Adam baseline.

Same model, same encoded synthetic rows; only the optimizer setup differs:
  sparse_adam  sparse-gradient id tables with SparseAdam + Adam for the rest (default)
  dense_adam   every table dense, one Adam over everything (baseline)

python benchmarks/training.py [--rows 200000] [--steps 150] [--device cpu|cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
import torch

from longtail.config import TrainConfig
from longtail.losses import bce
from longtail.models import ConversionModel, ModelConfig, encode, fit_feature_spec
from longtail.models.saved import to_tensors
from longtail.synthetic import make_training_rows
from longtail.train import build_optimizers


def run(
    kind: str,
    *,
    arrays: dict[str, np.ndarray],
    labels: np.ndarray,
    model_kwargs: dict[str, object],
    batch_size: int,
    steps: int,
    warmup: int,
    device: str,
    lr: float,
    mixed: bool,
) -> float:
    torch.manual_seed(0)
    cfg = ModelConfig(**model_kwargs, sparse_ids=kind == "sparse_adam")  # type: ignore[arg-type]
    model = ConversionModel(cfg).to(device)
    opts = build_optimizers(model, kind=kind, learning_rate=lr)
    n = labels.shape[0]
    all_x = to_tensors(arrays, device=device)
    all_y = torch.from_numpy(labels.copy()).to(device)
    rng = np.random.default_rng(0)
    done = 0
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        idx = torch.from_numpy(rng.integers(0, n, batch_size)).to(device)
        batch = {k: v[idx] for k, v in all_x.items()}
        ctx = (
            torch.autocast(device_type=device, dtype=torch.bfloat16)
            if mixed
            else torch.autocast(device_type=device, enabled=False)
        )
        with ctx:
            logits = model(batch)
        loss = bce(logits.float(), all_y[idx])
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()
        if step >= warmup:
            done += batch_size
    if device == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def main() -> None:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sequence-length", type=int, default=defaults.sequence_length)
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--smoke-test", action="store_true")
    args = p.parse_args()
    if args.smoke_test:
        args.rows, args.steps, args.warmup = 5_000, 5, 1
    torch.set_num_threads(args.threads)
    rows = make_training_rows(
        n_rows=args.rows,
        n_users=max(args.rows // 10, 10),
        n_items=max(args.rows // 20, 10),
        recent_items=args.sequence_length,
        seed=0,
    )
    spec = fit_feature_spec(
        rows,
        hash_buckets_user=defaults.hash_buckets_user,
        hash_buckets_item=defaults.hash_buckets_item,
        sequence_length=args.sequence_length,
    )
    arrays = encode(rows, spec)
    labels = rows["label"].cast(pl.Float32).to_numpy()
    model_kwargs: dict[str, object] = {
        "n_dense": len(spec.dense_columns),
        "category_vocab_size": spec.category_vocab_size,
        "hash_buckets_user": defaults.hash_buckets_user,
        "hash_buckets_item": defaults.hash_buckets_item,
        "embedding_dim": defaults.embedding_dim,
        "sequence_length": spec.sequence_length,
        "over_hidden": tuple(defaults.over_hidden),
    }
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"device={device_name} threads={args.threads} rows={args.rows} batch={args.batch_size} "
        f"steps={args.steps} hash_buckets={defaults.hash_buckets_user}/"
        f"{defaults.hash_buckets_item} dim={defaults.embedding_dim} seq={spec.sequence_length} "
        f"mixed={args.mixed_precision}"
    )
    results = {}
    for kind in ("sparse_adam", "dense_adam"):
        results[kind] = run(
            kind,
            arrays=arrays,
            labels=labels,
            model_kwargs=model_kwargs,
            batch_size=args.batch_size,
            steps=args.steps,
            warmup=args.warmup,
            device=args.device,
            lr=defaults.learning_rate,
            mixed=args.mixed_precision,
        )
    base = results["dense_adam"]
    print(f"{'optimizer':<14}{'samples/s':>12}{'vs dense':>10}")
    for kind, rate in results.items():
        print(f"{kind:<14}{rate:>12,.0f}{rate / base:>9.2f}x")


if __name__ == "__main__":
    main()
