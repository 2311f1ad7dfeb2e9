"""Training throughput: the default optimizer setup against a plain dense-Adam baseline.

Same model, same encoded synthetic rows; only the optimizer setup differs:
  sparse_adam  sparse-gradient id tables with SparseAdam + Adam for the rest (default)
  dense_adam   every table dense, one Adam over everything (baseline)

python benchmarks/training.py [--rows 200000] [--steps 150] [--device cpu|cuda] [--threads 2]

With --sweep the default setup (sparse_adam) is timed instead at every batch size of
--batch-sizes, every torch thread count of --thread-counts, and with the model's forward
eager and under ``torch.compile`` (--compile-too): the fastest raw loop this model
allows on the machine, one row per setting.

python benchmarks/training.py --sweep [--batch-sizes 512,1024,2048,4096,8192]
                              [--thread-counts 1,2] [--compile-too]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

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
    compiled: bool = False,
) -> float:
    torch.manual_seed(0)
    cfg = ModelConfig(**model_kwargs, sparse_ids=kind == "sparse_adam")  # type: ignore[arg-type]
    model = ConversionModel(cfg).to(device)
    opts = build_optimizers(model, kind=kind, learning_rate=lr)
    net: Any = torch.compile(model) if compiled else model
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
        # index_select, as the worker's shard cache (faster than v[idx] for the same rows)
        batch = {k: torch.index_select(v, 0, idx) for k, v in all_x.items()}
        ctx = (
            torch.autocast(device_type=device, dtype=torch.bfloat16)
            if mixed
            else torch.autocast(device_type=device, enabled=False)
        )
        with ctx:
            logits = net(batch)
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
    p.add_argument("--sweep", action="store_true", help="time sparse_adam over the settings")
    p.add_argument("--batch-sizes", default="512,1024,2048,4096,8192")
    p.add_argument("--thread-counts", default="1,2")
    p.add_argument("--compile-too", action="store_true", help="also time torch.compile")
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
    if args.sweep:
        _sweep(
            args, arrays=arrays, labels=labels, model_kwargs=model_kwargs, lr=defaults.learning_rate
        )
        return
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


def _sweep(
    args: argparse.Namespace,
    *,
    arrays: dict[str, np.ndarray],
    labels: np.ndarray,
    model_kwargs: dict[str, object],
    lr: float,
) -> None:
    """One row per (threads, batch size, eager or compiled): sparse_adam samples/s."""
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    thread_counts = [int(t) for t in args.thread_counts.split(",")]
    modes = [False, True] if args.compile_too else [False]
    print(f"{'threads':>7}{'batch':>7}{'forward':>10}{'samples/s':>12}{'vs default':>12}")
    base: float | None = None
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for batch_size in batch_sizes:
            for compiled in modes:
                # The same number of rows per setting, so each one sees as much data.
                steps = max(args.steps * TrainConfig().batch_size // batch_size, 10)
                try:
                    rate = run(
                        "sparse_adam",
                        arrays=arrays,
                        labels=labels,
                        model_kwargs=model_kwargs,
                        batch_size=batch_size,
                        steps=steps,
                        warmup=args.warmup,
                        device=args.device,
                        lr=lr,
                        mixed=args.mixed_precision,
                        compiled=compiled,
                    )
                except Exception as exc:  # a setting that fails is a row of the table too
                    print(f"{threads:>7}{batch_size:>7}{'compiled':>10}  failed: {exc!r:.60}")
                    continue
                default = batch_size == TrainConfig().batch_size and not compiled
                if default and threads == args.threads:
                    base = rate
                ratio = f"{rate / base:>11.2f}x" if base else f"{'':>12}"
                mode = "compiled" if compiled else "eager"
                print(f"{threads:>7}{batch_size:>7}{mode:>10}{rate:>12,.0f}{ratio}", flush=True)


if __name__ == "__main__":
    main()
