"""Benchmark: every strategy on N rows x F features, ours (on Ray, per group) vs imblearn.

    PYTHONPATH=lib python benchmarks/resampling.py --rows 1000000 --features 20 \
        --timeout 120 --max-group-rows 50000 [--json out.json]

Each measurement runs in its own subprocess with a wall-clock timeout.
* ours: ``resample_train_split`` on a local Ray (num_cpus=2) reading the train
  split from Parquet and writing the resampled parts; wall time excludes starting
  Ray; peak memory is the peak summed RSS of the process tree (driver, raylet,
  workers; shared object-store pages can be counted more than once).
* imblearn: the whole frame's dense features (nulls filled with the median) as one
  numpy array, ``Sampler(random_state=0).fit_resample(X, y)`` with imblearn's
  defaults, in one process; peak memory is its max RSS. "wall" is the sampler
  alone (the target's baseline); "+ read/write" adds reading the split and writing
  the resampled dense features and label as Parquet, what a one-process job does
  (ours always includes both, and ids and categoricals besides).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, get_args

from longtail.config import StrategyName
from longtail.paths import Layout

STRATEGIES = list(get_args(StrategyName))


def _tree_rss_peak(stop: threading.Event, out: list[float]) -> None:
    import psutil

    me = psutil.Process()
    peak = 0.0
    while not stop.is_set():
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        peak = max(peak, total / 2**20)
        time.sleep(0.2)
    out.append(peak)


def run_ours(data_dir: str, strategy: str, max_group_rows: int) -> dict[str, Any]:
    import ray.data

    from longtail.config import ResamplingConfig
    from longtail.ray_runtime import ensure_ray
    from longtail.resampling import resample_train_split

    ensure_ray(num_cpus=2)

    ray.data.DataContext.get_current().enable_progress_bars = False
    stop, peak = threading.Event(), []  # type: ignore[var-annotated]
    watcher = threading.Thread(target=_tree_rss_peak, args=(stop, peak))
    watcher.start()
    cfg = ResamplingConfig(strategy=strategy, max_group_rows=max_group_rows)
    start = time.perf_counter()
    report = resample_train_split(Layout(Path(data_dir)), cfg, seed=0)
    wall = time.perf_counter() - start
    stop.set()
    watcher.join()
    return {"wall_s": wall, "peak_mb": peak[0], "rows_out": sum(report.overall.after.values())}


def run_imblearn(data_dir: str, strategy: str) -> dict[str, Any]:
    import numpy as np
    import polars as pl

    from longtail.resampling.strategies import STRATEGIES as CLASSES
    from longtail.schema import LABEL, dense_feature_columns

    t_read = time.perf_counter()
    frame = pl.read_parquet(Layout(Path(data_dir)).split("train"))
    read_s = time.perf_counter() - t_read
    cols = dense_feature_columns(frame)
    x = (
        frame.select(pl.col(c).cast(pl.Float64) for c in cols)
        .with_columns(pl.all().fill_null(pl.all().median()))
        .to_numpy()
    )
    y = frame.get_column(LABEL).to_numpy()
    del frame
    start = time.perf_counter()
    cls = CLASSES[strategy]
    if cls is None:
        x_res, y_res = x, y
    else:
        params = cls().get_params(deep=False)
        sampler = cls(random_state=0) if "random_state" in params else cls()
        x_res, y_res = sampler.fit_resample(x, y)
    wall = time.perf_counter() - start
    rows = int(np.asarray(y_res).size)
    # What a one-process job adds: writing the result (dense features and label only).
    t_write = time.perf_counter()
    out = pl.DataFrame(np.asarray(x_res), schema=cols).with_columns(pl.Series(LABEL, y_res))
    out.write_parquet(Path(data_dir) / "imblearn_out.parquet")
    write_s = time.perf_counter() - t_write
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall_s": wall, "io_wall_s": read_s + wall + write_s, "peak_mb": peak, "rows_out": rows}


def _child(args: argparse.Namespace) -> None:
    if args.child == "ours":
        result = run_ours(args.data_dir, args.strategy, args.max_group_rows)
    else:
        result = run_imblearn(args.data_dir, args.strategy)
    print("RESULT " + json.dumps(result), flush=True)


def _measure(kind: str, strategy: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--strategy",
        strategy,
        "--data-dir",
        args.data_dir,
        "--max-group-rows",
        str(args.max_group_rows),
    ]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.timeout, env=os.environ.copy()
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return {"status": "ok", **json.loads(line.removeprefix("RESULT "))}
    return {"status": "error", "stderr": done.stderr[-2000:]}


def _cell(result: dict[str, Any], key: str) -> str:
    if result["status"] != "ok":
        return result["status"]
    value = result[key]
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--max-group-rows", type=int, default=50_000)
    parser.add_argument("--strategies", nargs="*", default=STRATEGIES)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--skip-imblearn", action="store_true", help="measure ours only (imblearn known slow)"
    )
    parser.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["ours", "imblearn"], help=argparse.SUPPRESS)
    parser.add_argument("--strategy", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    from longtail.io import write_parquet
    from longtail.synthetic import make_train_frame

    with tempfile.TemporaryDirectory(prefix="longtail-bench-") as tmp:
        args.data_dir = tmp
        frame = make_train_frame(args.rows, n_features=args.features, seed=0)
        write_parquet(frame, Layout(Path(tmp)).split("train"))
        print(
            f"{args.rows} rows x {args.features} dense features, "
            f"{frame.get_column('label').mean():.3%} positives, "
            f"max_group_rows={args.max_group_rows}, timeout={args.timeout:.0f}s",
            flush=True,
        )
        del frame
        header = (
            f"| {'strategy':<17} | ours wall s | ours peak MB | imblearn wall s "
            f"| imblearn + read/write s | imblearn peak MB | rows out (ours) "
            f"| rows out (imblearn) |"
        )
        print(header)
        print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|", flush=True)
        results = {}
        for strategy in args.strategies:
            ours = _measure("ours", strategy, args)
            theirs = (
                {"status": "skipped"}
                if args.skip_imblearn
                else _measure("imblearn", strategy, args)
            )
            results[strategy] = {"ours": ours, "imblearn": theirs}
            print(
                f"| {strategy:<17} | {_cell(ours, 'wall_s'):>11} | {_cell(ours, 'peak_mb'):>12} "
                f"| {_cell(theirs, 'wall_s'):>15} | {_cell(theirs, 'io_wall_s'):>23} "
                f"| {_cell(theirs, 'peak_mb'):>16} "
                f"| {_cell(ours, 'rows_out'):>15} | {_cell(theirs, 'rows_out'):>19} |",
                flush=True,
            )
            for name, res in (("ours", ours), ("imblearn", theirs)):
                if res["status"] == "error":
                    print(f"  {name} {strategy} failed: {res['stderr']}", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
