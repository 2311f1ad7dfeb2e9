"""Micro-benchmarks behind the scoring and resampling design choices, one table.

    PYTHONPATH=lib python benchmarks/kernel_parts.py [--skip-ray]

One torch thread and one Polars thread (set before Polars is imported), best of
several repeats, on data of the shapes ``benchmarks/scoring.py`` and
``benchmarks/resampling.py`` use:

* DLRM interaction of 4 vectors x 16, 4,096 rows: the batched Gram matrix plus its
  upper-triangle gather against ``InteractionArch``'s row-wise dot products
* the benchmark model's forward per 250k-row block, and per row at several pass sizes
* ``encode`` per 65,536 rows; ``top_k`` (K=20 of 200) per 250k-row block against one
  sort of every row
* a resampled group's Parquet part (90k rows x 27 columns) written with zstd and lz4
* Ray Data's helper actors: CPU-seconds their processes spend starting
  (``warm_ray_data``), from psutil
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["POLARS_MAX_THREADS"] = "1"
sys.path.insert(0, str(Path(__file__).parent))

import polars as pl
import torch

from longtail import schema as S
from longtail.models import encode
from longtail.models.arch import InteractionArch
from longtail.models.saved import to_tensors
from longtail.scoring.topk import top_k


def best(fn: Callable[[], Any], *, repeats: int = 5) -> float:
    """Fastest of ``repeats`` calls, in seconds (one warm-up call first)."""
    fn()
    out = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def record(name: str, value: float, unit: str) -> None:
    print(f"{name:<58} {value:>10.3f} {unit}", flush=True)


def interaction() -> None:
    torch.manual_seed(0)
    vectors = [torch.randn(4_096, 16) for _ in range(4)]
    stacked = torch.stack(vectors, dim=1)
    rows, cols = torch.triu_indices(4, 4, offset=1)
    arch = InteractionArch(4)

    def gram() -> torch.Tensor:
        dots = torch.bmm(stacked, stacked.transpose(1, 2))
        return torch.cat([stacked[:, 0], dots[:, rows, cols]], dim=1)

    with torch.inference_mode():
        record("interaction, Gram matrix + gather, 4,096 rows", best(gram, repeats=200) * 1e6, "us")
        record(
            "interaction, row-wise dot products, 4,096 rows",
            best(lambda: arch(vectors), repeats=200) * 1e6,
            "us",
        )


def scoring_parts() -> None:
    import scoring as bench
    from longtail.synthetic import make_training_rows

    pool = make_training_rows(n_rows=100_000, n_users=5_000, n_items=20_000, seed=1)
    model = bench.build_model(Path(tempfile.mkdtemp(prefix="kernel-parts-")) / "m", pool)
    block = bench.make_pairs(pool, users=1_250, candidates=200, seed=2)  # 250k pairs
    arrays = encode(block, model.spec)
    with torch.inference_mode():
        for rows in (2_048, 4_096, 8_192, 16_384):
            passes = [
                to_tensors({k: v[i : i + rows] for k, v in arrays.items()})
                for i in range(0, block.height - rows + 1, rows)
            ]

            def forward(passes: list[dict[str, torch.Tensor]] = passes) -> None:
                for x in passes:
                    model.module(x)

            per_row = best(forward) / (len(passes) * rows)
            record(f"forward per row, {rows:,}-row passes", per_row * 1e9, "ns")
            if rows == 4_096:
                record("forward per 250k-row block, 4,096-row passes", per_row * 25e7, "ms")
    span = block.head(65_536)
    record("encode per 65,536 rows", best(lambda: encode(span, model.spec), repeats=20) * 1e3, "ms")
    scored = bench.kernel(model, block)
    order, desc = [S.USER_ID, "score", S.ITEM_ID], [False, True, False]
    record(
        "sort of every row of a 250k-pair block (before)",
        best(lambda: scored.sort(order, descending=desc)) * 1e3,
        "ms",
    )
    record("top_k K=20 of a 250k-pair block", best(lambda: top_k(scored, k=20)) * 1e3, "ms")


def parquet_parts() -> None:
    from longtail.synthetic import make_train_frame

    frame = make_train_frame(90_000, n_features=20, seed=0)
    path = Path(tempfile.mkdtemp(prefix="kernel-parts-")) / "part.parquet"
    for codec in ("zstd", "lz4"):
        write = best(lambda codec=codec: frame.write_parquet(path, compression=codec))
        record(f"write a 90k x {frame.width} resampled part, {codec}", write * 1e3, "ms")
        record(f"  read it back, {codec}", best(lambda: pl.read_parquet(path)) * 1e3, "ms")
        record(f"  size, {codec}", path.stat().st_size / 1e6, "MB")


def ray_helpers() -> None:
    import psutil

    from longtail.ray_runtime import ensure_ray, warm_ray_data

    ensure_ray(num_cpus=2)
    time.sleep(5)  # let Ray finish booting its own idle workers
    before = {p.pid for p in psutil.process_iter()}
    warm_ray_data().join()
    cpu = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        name = proc.info["name"] or ""
        helper = any(h in name for h in ("Stats", "Autoscaling", "ActorLocation"))
        if proc.pid not in before and helper:
            cpu += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    record("Ray Data helper actors starting (three processes)", cpu, "CPU-s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    interaction()
    scoring_parts()
    parquet_parts()
    if not args.skip_ray:
        ray_helpers()


if __name__ == "__main__":
    main()
