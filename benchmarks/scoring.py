"""Batch scoring throughput: Ray Data against the same kernel in-process and a naive loop.

Synthetic but realistic: USERS x CANDIDATES (user, item) pairs with features of the
training-row shape (drawn from ``make_training_rows``), a model of the default
architecture (``[train]`` defaults: hashed 50,000 x 16 id tables, category table,
~20 dense features, DLRM interaction, MLP 64-32) saved with ``save_model`` and
loaded with ``load_model``, with per-bucket prior offsets and Platt scaling like a
model trained on resampled rows.

The kernel is what ``BatchScorer`` does after the feature-store join:
``LoadedModel.predict`` (encode, forward, calibration) on pre-joined feature rows.
The Feast join (``features_for``) is NOT included. Top-K is ``scoring.topk.top_k``.

  ray      as ``run_scoring`` does: user-hash blocks (written as Parquet parts in the
           setup; reading a part stands in for the per-block feature join) ->
           ``map_batches`` (callable class, one actor per CPU, one block per call; each
           keeps its users' top K) -> ``iter_batches`` -> Polars -> the final top-K
  parts    the same per-block work in one process, block after block (the Ray
           overhead share compares against this)
  inproc   the kernel over the whole in-memory frame (4,096-row forward passes), no I/O
  naive    one user at a time: encode, forward, calibrate 200 rows, argsort, take K (a sample,
           extrapolated)

Also: FLOPs per pair (counted with torch's FlopCounterMode) -> achieved GFLOP/s of
the forward against a measured float32 matmul peak, the share of time in top-K,
and the online read latency of a user's list (``read_latency``, SQLite store).

python benchmarks/scoring.py [--users 100000] [--candidates 200] [--k 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import torch

from longtail import schema as S
from longtail.config import TrainConfig, config_from_dict
from longtail.models import Calibration, ConversionModel, encode, fit_feature_spec, load_model
from longtail.models.saved import FORWARD_ROWS, LoadedModel, save_model, to_tensors
from longtail.scoring.pipeline import block_count, candidate_blocks, reduce_batch
from longtail.scoring.topk import top_k

OFFSETS = {"head": 1.2, "torso": 0.9, "tail": 0.5, "*": 0.9}


def build_model(folder: Path, pool: pl.DataFrame) -> LoadedModel:
    """Save a default-architecture model with bucket offsets and Platt scaling, then load it."""
    tc = TrainConfig()
    spec = fit_feature_spec(
        pool, hash_buckets_user=tc.hash_buckets_user, hash_buckets_item=tc.hash_buckets_item
    )
    torch.manual_seed(0)
    # Imported here: the Ray actors unpickle this module's Scorer, and the training
    # stack (Ray Train) would add seconds to their start-up that run_scoring's
    # BatchScorer does not pay.
    from longtail.train.driver import build_model_config

    model = ConversionModel(build_model_config(tc, spec))
    calibration = Calibration(
        offset_by=S.POPULARITY_BUCKET, offsets=OFFSETS, method="platt", platt_a=0.9, platt_b=-0.2
    )
    save_model(
        folder, version="bench", model=model, spec=spec, calibration=calibration,
        extra={"strategy": "undersample"},
    )  # fmt: skip
    return load_model(folder)


def make_pairs(pool: pl.DataFrame, *, users: int, candidates: int, seed: int) -> pl.DataFrame:
    """USERS x CANDIDATES rows: distinct items per user, features drawn from the pool."""
    rng = np.random.default_rng(seed)
    n_items = 50_000
    user = np.repeat(np.arange(1, users + 1, dtype=np.int64), candidates)
    # Distinct items per user: a random start and a stride coprime with the catalog.
    start = np.repeat(rng.integers(0, n_items, users), candidates)
    item = (start + np.tile(np.arange(candidates) * 7_919, users)) % n_items + 1
    rows = pool.drop(S.USER_ID, S.ITEM_ID, S.LABEL, S.SPLIT, S.EVENT_TIME).gather(
        rng.integers(0, pool.height, users * candidates)
    )
    return rows.with_columns(pl.Series(S.USER_ID, user), pl.Series(S.ITEM_ID, item))


def kernel(model: LoadedModel, frame: pl.DataFrame) -> pl.DataFrame:
    """What ``BatchScorer.__call__`` does after the feature join."""
    with torch.inference_mode():
        pred = model.predict(frame)
    return frame.select(S.USER_ID, S.ITEM_ID, S.POPULARITY_BUCKET).with_columns(
        pl.Series("score", pred.logits), pl.Series("probability", pred.probabilities)
    )


def score_part(model: LoadedModel, path: str, *, k: int) -> pl.DataFrame:
    """One block of ``run_scoring``'s work: fetch the block's feature rows, score, keep top K.

    Reading the block's pre-joined rows from Parquet stands in for the feature-store
    join that ``BatchScorer`` runs per block (itself a Parquet read and a join).
    """
    return reduce_batch(kernel(model, pl.read_parquet(path)), k=k, tail_min_share=0.0)


class Scorer:
    """Ray Data callable: load the model once, then score the blocks named in each batch."""

    def __init__(self, *, model_path: str, k: int) -> None:
        self.model = load_model(model_path)
        self.k = k

    def __call__(self, batch: pa.Table) -> pa.Table:
        parts = [score_part(self.model, p, k=self.k) for p in batch.column("path").to_pylist()]
        return pl.concat(parts).to_arrow()


def run_ray(paths: list[str], model_path: Path, *, k: int) -> dict[str, float]:
    """As ``run_scoring``: a pool of one actor per CPU, one block per call, top K per user."""
    import ray

    cpus = max(int(ray.available_resources().get("CPU", 1)), 1)
    t0 = time.perf_counter()
    out = ray.data.from_items([{"path": p} for p in paths]).map_batches(
        Scorer,
        fn_constructor_kwargs={"model_path": str(model_path), "k": k},
        batch_format="pyarrow",
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=cpus),
        num_cpus=1,
    )
    tables = list(out.iter_batches(batch_format="pyarrow", batch_size=None))
    kept = pl.concat(pl.DataFrame(pl.from_arrow(t)) for t in tables if t.num_rows)
    return finish(kept, k=k, t0=t0)


def finish(kept: pl.DataFrame, *, k: int, t0: float) -> dict[str, float]:
    """The final top-K over the per-block top Ks, and the path's timings."""
    t1 = time.perf_counter()
    ranked = top_k(kept.drop("_pairs"), k=k)
    t2 = time.perf_counter()
    return {
        "score_s": t1 - t0,
        "topk_s": t2 - t1,
        "pairs": int(kept.get_column("_pairs").sum()),
        "lists": ranked.height,
    }


def run_parts(model: LoadedModel, paths: list[str], *, k: int) -> dict[str, float]:
    """The Ray path's work in one process: every block in turn, then the same top-K."""
    t0 = time.perf_counter()
    return finish(pl.concat(score_part(model, p, k=k) for p in paths), k=k, t0=t0)


def run_inproc(model: LoadedModel, pairs: pl.DataFrame, *, k: int) -> dict[str, float]:
    """The same kernel over the in-memory frame, then the same top-K."""
    t0 = time.perf_counter()
    scored = kernel(model, pairs)
    t1 = time.perf_counter()
    ranked = top_k(scored, k=k)
    t2 = time.perf_counter()
    return {"score_s": t1 - t0, "topk_s": t2 - t1, "pairs": scored.height, "lists": ranked.height}


def run_naive(
    model: LoadedModel, pairs: pl.DataFrame, *, candidates: int, k: int, sample: int
) -> dict[str, float]:
    """One user at a time (rows are grouped by user): predict, argsort, take K."""
    t0 = time.perf_counter()
    kept = 0
    with torch.inference_mode():
        for u in range(sample):
            rows = pairs.slice(u * candidates, candidates)
            # Unpadded: predict() would pad each user's 200 rows to a 4,096-row pass.
            logits = model.module(to_tensors(encode(rows, model.spec))).double().numpy()
            model.calibration.apply(logits, rows.get_column(S.POPULARITY_BUCKET))
            order = np.argsort(-logits, kind="stable")[:k]
            kept += len(rows[S.ITEM_ID].to_numpy()[order])
    return {"score_s": time.perf_counter() - t0, "topk_s": 0.0, "pairs": sample * candidates}


def flops_per_pair(model: LoadedModel, pairs: pl.DataFrame) -> float:
    """Matmul FLOPs of one forward (Linear layers and the interaction bmm), per row."""
    from torch.utils.flop_counter import FlopCounterMode

    rows = 4_096
    x = to_tensors(encode(pairs.head(rows), model.spec))
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.module(x)
    return counter.get_total_flops() / rows


def forward_time(model: LoadedModel, pairs: pl.DataFrame, *, rows: int) -> tuple[float, float]:
    """Seconds of (encode, forward) alone for ``rows`` rows, as ``predict`` does them.

    Spans of 16 passes are encoded at once, then run through forward passes of
    :data:`FORWARD_ROWS` rows.
    """
    enc = fwd = 0.0
    span = 16 * FORWARD_ROWS
    with torch.inference_mode():
        for first in range(0, rows, span):
            t0 = time.perf_counter()
            arrays = encode(pairs.slice(first, min(span, rows - first)), model.spec)
            enc += time.perf_counter() - t0
            for start in range(0, len(arrays["user"]), FORWARD_ROWS):
                x = to_tensors({k: v[start : start + FORWARD_ROWS] for k, v in arrays.items()})
                t1 = time.perf_counter()
                model.module(x)
                fwd += time.perf_counter() - t1
    return enc, fwd


def matmul_peak(*, n: int = 4_096, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matmul with the current torch threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def online_latency(lists: pl.DataFrame, work: Path, *, reads: int) -> dict[str, Any]:
    """Push the lists to a SQLite online store, then time single-user reads."""
    from longtail.scoring.serving import push_lists, read_latency
    from longtail.store import feature_store

    cfg = config_from_dict({"data_dir": str(work / "store")})
    date = dt.date(2024, 1, 20)
    as_of = dt.datetime(2024, 1, 21, tzinfo=dt.UTC)
    recs = lists.select(
        S.USER_ID, "rank", S.ITEM_ID, "score", "probability", pl.lit("bench").alias("model_version")
    )
    store = feature_store(cfg)
    t0 = time.perf_counter()
    pushed = push_lists(store, cfg, recs, date=date, as_of=as_of)
    push_s = time.perf_counter() - t0
    users = lists[S.USER_ID].unique().sample(reads, seed=0).to_list()
    read_latency(store, users[:20])  # warm the connection and registry cache
    return {"pushed": pushed, "push_s": push_s, **read_latency(store, users)}


def print_table(
    results: dict[str, dict[str, float]], *, args: argparse.Namespace, naive_scale: float
) -> None:
    """Print users/s and pairs/s per path, the speed-ups and the Ray overhead share."""
    n_pairs = args.users * args.candidates
    print(f"\n{args.users:,} users x {args.candidates} candidates, K={args.k}, "
          f"{args.threads} torch threads / Ray CPUs")  # fmt: skip
    cols = ("path", "total s", "users/s", "pairs/s", "top-K share")
    print(f"| {cols[0]:<44} | " + " | ".join(f"{c:>11}" for c in cols[1:]) + " |")
    print("|" + "-" * 46 + "|" + "|".join("-" * 13 for _ in cols[1:]) + "|")
    labels = {
        "ray": "Ray Data map_batches (blocks) + top-K",
        "parts": "same blocks in one process + top-K",
        "inproc": "kernel on the in-memory frame + top-K",
        "naive": f"naive per-user loop (extrapolated x{naive_scale:.0f})",
    }
    totals = {}
    for name, label in labels.items():
        if name not in results:
            continue
        r = results[name]
        total = totals[name] = r["score_s"] + r["topk_s"]
        print(
            f"| {label:<44} | {total:>11.1f} | {args.users / total:>11,.0f} | "
            f"{n_pairs / total:>11,.0f} | {r['topk_s'] / total:>11.1%} |"
        )
    print(f"\nin-process vs naive: {totals['naive'] / totals['inproc']:.1f}x")
    if "ray" in totals:
        share = (totals["ray"] - totals["parts"]) / totals["ray"]
        print(f"Ray vs naive: {totals['naive'] / totals['ray']:.1f}x")
        print(f"Ray overhead share (Ray - same blocks in one process) / Ray: {share:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--naive-users", type=int, default=2_000)
    parser.add_argument("--reads", type=int, default=1_000)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    n_pairs = args.users * args.candidates
    warming = None
    if not args.skip_ray:
        from longtail.ray_runtime import ensure_ray, warm_ray_data

        # Started first, as run_scoring starts them before its candidates: Ray keeps
        # booting for seconds after ray.init returns, and Ray Data's helper actors
        # start with a session's first pipeline (4.1 CPU-s). Both are start-up, which
        # the timed paths exclude like ray.init.
        ensure_ray(num_cpus=args.threads)
        warming = warm_ray_data()
    work = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    try:
        t0 = time.perf_counter()
        from longtail.synthetic import make_training_rows

        pool = make_training_rows(n_rows=100_000, n_users=5_000, n_items=20_000, seed=1)
        model = build_model(work / "models", pool)
        pairs = make_pairs(pool, users=args.users, candidates=args.candidates, seed=2)
        (work / "parts").mkdir()
        paths = []
        for i, block in enumerate(candidate_blocks(pairs, parts=block_count(n_pairs, actors=2))):
            paths.append(str(work / "parts" / f"part-{i:04d}.parquet"))
            pl.DataFrame(pl.from_arrow(block)).write_parquet(paths[-1])
        print(
            f"setup: {n_pairs:,} pairs, {pairs.width} columns, {len(paths)} blocks "
            f"in {time.perf_counter() - t0:.1f}s"
        )

        results: dict[str, dict[str, float]] = {}
        results["inproc"] = run_inproc(model, pairs, k=args.k)
        results["parts"] = run_parts(model, paths, k=args.k)
        naive = run_naive(
            model, pairs, candidates=args.candidates, k=args.k, sample=args.naive_users
        )
        scale = args.users / args.naive_users
        results["naive"] = {**naive, "score_s": naive["score_s"] * scale, "pairs": n_pairs}
        if warming is not None:
            warming.join()
            results["ray"] = run_ray(paths, model.path, k=args.k)

        fpp = flops_per_pair(model, pairs)
        rows = min(n_pairs, 2_000_000)
        enc_s, fwd_s = forward_time(model, pairs, rows=rows)
        peak = matmul_peak()
        print_table(results, args=args, naive_scale=args.users / args.naive_users)
        gflops = fpp * rows / fwd_s / 1e9
        print(f"\nFLOPs per pair (forward matmuls, FlopCounterMode): {fpp:,.0f}")
        print(f"forward only ({rows:,} rows): {fwd_s:.2f}s -> {gflops:.2f} GFLOP/s")
        print(f"encode only ({rows:,} rows): {enc_s:.2f}s")
        kern = results["inproc"]["score_s"]
        print(
            f"whole kernel (encode, forward, calibration): {fpp * n_pairs / kern / 1e9:.2f} GFLOP/s"
        )
        print(f"float32 4096^2 matmul peak, {args.threads} threads: {peak:.1f} GFLOP/s")
        print(f"forward at {gflops / peak:.1%} of the matmul peak")

        lat_users = min(args.users, 20_000)
        lat_lists = top_k(kernel(model, pairs.head(lat_users * args.candidates)), k=args.k)
        lat = online_latency(lat_lists, work, reads=min(args.reads, lat_users))
        print(f"\nonline store (SQLite): pushed {lat['pushed']:,} lists in {lat['push_s']:.1f}s")
        print(
            f"{lat['reads']} single-user reads: p50 {lat['p50_ms']:.2f} ms, "
            f"p95 {lat['p95_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
