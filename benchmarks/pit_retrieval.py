"""Point-in-time retrieval: our Polars offline store vs Feast's file store vs raw join_asof.

    PYTHONPATH=lib python benchmarks/pit_retrieval.py [--users 100000] [--days 50]
        [--items 20000] [--rows 1000000] [--feast-rows 20000] [--out DIR]

Sources: users x days daily user snapshots and items x days item snapshots (six
numeric features each), TTL 2 days. Entity rows: random (user, item, time) over
the span, 2% with unknown users. Each method runs in its own process so its peak
memory (max RSS) is its own; setup (data, ``feast apply``) is not timed. Feast's
file (Dask) store runs on ``--feast-rows`` rows, and ours on the same rows too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FEATS = [f"f{i}" for i in range(6)]
TTL = dt.timedelta(days=2)


def make_data(root: Path, *, users: int, items: int, days: int, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    (root / "features").mkdir(parents=True, exist_ok=True)
    for name, n, key in (("user", users, "user_id"), ("item", items, "item_id")):
        ids = np.tile(np.arange(n, dtype=np.int64), days)
        day = np.repeat(np.arange(1, days + 1), n)
        frame = (
            pl.DataFrame({key: ids, "__day": day})
            .with_columns(
                (
                    pl.lit(START, dtype=pl.Datetime("us", "UTC"))
                    + pl.duration(days=pl.col("__day"))
                ).alias("event_timestamp"),
                *(pl.Series(f"{name}_{f}", rng.random(n * days) * 100) for f in FEATS),
            )
            .drop("__day")
        )
        frame.write_parquet(root / "features" / f"{name}_features.parquet")
    span = days * 86_400_000_000
    entity = pl.DataFrame(
        {
            "user_id": np.where(
                rng.random(rows) < 0.02, users + 1_000_000, rng.integers(0, users, rows)
            ),
            "item_id": rng.integers(0, items, rows),
            "event_time": pl.Series(
                (
                    np.datetime64(START.replace(tzinfo=None), "us")
                    + rng.integers(0, span, rows).astype("timedelta64[us]")
                ),
                dtype=pl.Datetime("us"),
            ).dt.replace_time_zone("UTC"),
        }
    )
    entity.write_parquet(root / "entity.parquet")


def _definitions() -> list[Any]:
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    objs: list[Any] = []
    for name in ("user", "item"):
        key = f"{name}_id"
        ent = Entity(name=name, join_keys=[key], value_type=ValueType.INT64)
        src = FileSource(
            name=f"{name}_src",
            path=f"features/{name}_features.parquet",
            timestamp_field="event_timestamp",
        )
        view = FeatureView(
            name=f"{name}_features",
            entities=[ent],
            ttl=TTL,
            schema=[Field(name=key, dtype=Int64)]
            + [Field(name=f"{name}_{f}", dtype=Float64) for f in FEATS],
            source=src,
        )
        objs += [ent, src, view]
    return objs


def _store(root: Path, kind: str) -> Any:
    from feast import FeatureStore, RepoConfig

    repo = root / f"repo_{kind}"
    repo.mkdir(exist_ok=True)
    offline: dict[str, Any]
    if kind == "ours":
        offline = {"type": "longtail.store.offline.PolarsOfflineStore", "data_dir": str(root)}
    else:
        offline = {"type": "file"}
    cfg = RepoConfig(
        project="bench",
        provider="local",
        registry=str(repo / "registry.db"),
        offline_store=offline,
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        entity_key_serialization_version=3,
        repo_path=str(root),  # Feast's file store resolves relative paths against it
    )
    store = FeatureStore(config=cfg)
    store.apply(_definitions())
    return store


def _refs() -> list[str]:
    return [f"{n}_features:{n}_{f}" for n in ("user", "item") for f in FEATS]


def run_method(root: Path, method: str, rows: int) -> dict[str, Any]:
    entity = pl.read_parquet(root / "entity.parquet").head(rows)
    if method == "raw":
        t_read = time.perf_counter()
        users = pl.read_parquet(root / "features" / "user_features.parquet")
        items = pl.read_parquet(root / "features" / "item_features.parquet")
        read_s = time.perf_counter() - t_read
        t0 = time.perf_counter()
        out = (
            entity.with_row_index("row")
            .sort("event_time")
            .join_asof(
                users.sort("event_timestamp"),
                left_on="event_time",
                right_on="event_timestamp",
                by="user_id",
            )
            .drop("event_timestamp")
            .join_asof(
                items.sort("event_timestamp"),
                left_on="event_time",
                right_on="event_timestamp",
                by="item_id",
            )
            .sort("row")
        )
        wall = time.perf_counter() - t0
        n = out.height
        nulls = out["user_f0"].null_count()
        extra = {"read_plus_join_s": round(read_s + wall, 3)}
    else:
        store = _store(root, method)
        frame: Any = entity if method == "ours" else entity.to_pandas()
        t0 = time.perf_counter()
        table = store.get_historical_features(entity_df=frame, features=_refs()).to_arrow()
        wall = time.perf_counter() - t0
        n = table.num_rows
        nulls = table.column("user_f0").null_count
        extra = {}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    return {
        "method": method,
        "entity_rows": rows,
        "rows_returned": n,
        "user_nulls": nulls,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(peak),
        **extra,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--days", type=int, default=50)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--feast-rows", type=int, nargs="+", default=[20_000, 100_000])
    p.add_argument("--feast-timeout", type=int, default=420)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--method", default=None, help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.method:  # child process: one method, one JSON line
        print(json.dumps(run_method(args.root, args.method, args.n)))
        return 0
    root = args.out or Path(tempfile.mkdtemp(prefix="pit-bench-"))
    t0 = time.perf_counter()
    make_data(root, users=args.users, items=args.items, days=args.days, rows=args.rows, seed=0)
    print(
        f"data: {args.users:,} users x {args.days} days, {args.items:,} items x {args.days} days, "
        f"{args.rows:,} entity rows ({time.perf_counter() - t0:.1f}s) in {root}",
        flush=True,
    )
    plan: list[tuple[str, int, int | None]] = [("raw", args.rows, None), ("ours", args.rows, None)]
    for n in args.feast_rows:
        plan += [("ours", n, None), ("file", n, args.feast_timeout)]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "lib"))
    results = []
    for method, n, timeout in plan:
        cmd = [sys.executable, __file__, "--method", method, "--root", str(root), "--n", str(n)]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=env, check=True
            )
            res = json.loads(done.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            res = {"method": method, "entity_rows": n, "wall_s": f">{timeout}", "timed_out": True}
        except subprocess.CalledProcessError as exc:
            res = {"method": method, "entity_rows": n, "error": exc.stderr.strip()[-400:]}
        results.append(res)
        print(json.dumps(res), flush=True)
    print("\n| method | entity rows | rows returned | wall s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        wall = r.get("wall_s", "-")
        if "read_plus_join_s" in r:
            wall = f"{wall} (read + join {r['read_plus_join_s']})"
        print(
            f"| {r['method']} | {r['entity_rows']:,} | {r.get('rows_returned', '-')} | "
            f"{wall} | {r.get('peak_rss_mib', '-')} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
