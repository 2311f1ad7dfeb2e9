"""Where the daily job's train step spends its time, against the raw training loop.

Runs the train step's own ``longtail.train.fit`` on a data dir whose features
step has run (e.g. one that ``benchmarks/daily_scale.py --keep`` left), and
splits its wall time into phases:

  prepare        driver: feature spec, class counts, validation dataset materialized
  ray_train      TorchTrainer.fit minus the epochs: worker group start-up, dataset
                 set-up, per-epoch reports and checkpoints, shutdown (in the
                 driver's process, Ray Train's local mode: model and optimizer set-up)
  epochs_compute the epochs' forward/backward/step (train_seconds - data_wait_seconds)
  epochs_ingest  the epochs' waits for the next batch (Ray Data read, encode, shuffle)
  epochs_val     per-epoch validation scoring in the worker (early stopping)
  calibration    fitting the calibration on validation (after the Ray run)
  scoring        the finished model's validation and test logits (Scorer.predict)
  evaluation     the metrics of validation and test (their wall time: the two splits
                 run in threads of their own since 2026-12-07)
  save/other     the rest of fit (feature spec, reading the splits, save_model, data
                 windows)

then runs the raw loop of ``benchmarks/training.py`` (random batches from
in-memory tensors, no Ray) on the same train rows, at 1 thread (what the Ray
Train worker gets with ``cpus_per_worker = 1``) and at ``--threads``. The
ratio is the train step's samples/s (rows x epochs / whole step) over the raw
loop's. The instrumentation wraps functions from outside (this benchmark only);
the epoch parts come from the worker's per-epoch report.

Before fit it times what the daily job's train step does first, in a process that
has not yet: import the train code, and prints the step's rate with it too. A fit
that needs Ray (worker actors, Ray Data) starts it inside fit, and its start is then
part of the fit's phases; one in the driver's process reading the splits directly
starts none. ``--start-ray-first`` starts a local Ray before fit and times it, as the
train step did before 2026-12-07 (when no step before it had, as with strategy
"none"); a fit of that code needs it. The data dir's ``models/current.json`` is put
back as it was.

The raw loop runs in a fresh process of its own (``--raw-where fresh``, the
default), as ``benchmarks/training.py`` does by hand: run in the process the fit
has just used (``--raw-where same``, what this benchmark did before 2026-12-04),
it was slower at 930k train rows (the fastest of 1 and 2 threads 297k against 360k
samples/s, medians of 10 and 8 runs), which flattered the ratio.

python benchmarks/train_phases.py --config C --data-dir D [--raw-steps 200] [--threads 2]
    [--cache-train-rows N] [--in-process auto|true|false] [--raw-where fresh|same]
    [--start-ray-first]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import torch

from longtail.config import load_config
from longtail.models import encode
from longtail.paths import Layout
from longtail.ray_runtime import ensure_ray, shutdown_ray

ROOT = Path(__file__).resolve().parents[1]
SPENT: dict[str, float] = defaultdict(float)
# Paid before fit in this process, as the daily job's train step pays them when no
# step before it has imported the train code (or started Ray, --start-ray-first).
OUTSIDE: dict[str, float] = {}


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - t0

    return wrapper


def instrument() -> None:
    """Time the train step's parts by wrapping them where ``fit`` looks them up.

    Patches every loaded ``longtail.train`` module that holds the function, so it
    keeps working when ``fit``'s finishing code moves to another module.
    """
    import ray.data
    from ray.train.torch import TorchTrainer

    import longtail.train  # noqa: F401  (loads the driver and its imports)
    from longtail.models.saved import Scorer

    targets = {
        "fit_calibration": "calibration",
        "_metrics": "evaluation",
        "save_model": "save",
    }
    for mod_name, module in list(sys.modules.items()):
        if not mod_name.startswith("longtail.train") or module is None:
            continue
        for attr, phase in targets.items():
            if hasattr(module, attr):
                setattr(module, attr, _timed(phase, getattr(module, attr)))
    TorchTrainer.fit = _timed("trainer_fit", TorchTrainer.fit)  # type: ignore[method-assign]
    Scorer.predict = _timed("scoring", Scorer.predict)  # type: ignore[method-assign]
    ray.data.Dataset.materialize = _timed(  # type: ignore[method-assign]
        "materialize", ray.data.Dataset.materialize
    )


def _raw_loop() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_training", ROOT / "benchmarks" / "training.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--raw-steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-fit", action="store_true", help="only the raw loop")
    p.add_argument(
        "--raw-where",
        choices=("fresh", "same"),
        default="fresh",
        help="run the raw loop in a fresh process (default) or in the fit's own process",
    )
    p.add_argument("--raw-json", type=Path, help=argparse.SUPPRESS)  # the fresh process's answer
    p.add_argument(
        "--start-ray-first",
        action="store_true",
        help="start and time a local Ray before fit (the train step before 2026-12-07)",
    )
    p.add_argument(
        "--cache-train-rows", type=int, help="override [train] cache_train_rows (0: stream)"
    )
    p.add_argument(
        "--in-process",
        choices=("auto", "true", "false"),
        default="auto",
        help="override [train] in_process (true: Ray Train's local mode in this process)",
    )
    args = p.parse_args()
    cfg = load_config(args.config, data_dir=args.data_dir)
    overrides: dict[str, Any] = {}
    if args.cache_train_rows is not None:
        overrides["cache_train_rows"] = args.cache_train_rows
    if args.in_process != "auto":
        overrides["in_process"] = args.in_process == "true"
    if overrides:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update=overrides)})
    layout = Layout(cfg.data_dir)
    tc = cfg.train
    load = os.getloadavg()[0]
    result = None
    whole = float("nan")
    if not args.skip_fit:
        t0 = time.perf_counter()
        import longtail.train  # noqa: F401  (what the daily job's train step imports first)

        OUTSIDE["import longtail.train"] = time.perf_counter() - t0
        if args.start_ray_first:
            t0 = time.perf_counter()
            ensure_ray()
            OUTSIDE["Ray start"] = time.perf_counter() - t0
        instrument()
        from longtail.train import fit

        version = "_bench_train_phases"
        pointer = layout.current_model
        before = pointer.read_bytes() if pointer.is_file() else None
        t0 = time.perf_counter()
        result = fit(layout, cfg, version=version)
        whole = time.perf_counter() - t0
        shutil.rmtree(result.path, ignore_errors=True)
        # The data dir's model pointer as it was: it must not name the folder just removed.
        if before is None:
            pointer.unlink(missing_ok=True)
        else:
            pointer.write_bytes(before)
        shutdown_ray()
    load_after = os.getloadavg()[0]

    if args.skip_fit or args.raw_where == "same":
        raw = _raw_rates(cfg, args)
    else:
        raw = _raw_rates_in_a_fresh_process(args)
    if args.raw_json is not None:
        args.raw_json.write_text(json.dumps(raw), encoding="utf-8")
    from longtail.train.driver import resolve_inputs

    files = resolve_inputs(layout, strategy=cfg.resampling.strategy).train_files
    rows = pl.scan_parquet([str(f) for f in files]).select(pl.len()).collect().item()
    _print(args, tc, rows, load, load_after, result, whole, raw)


def _raw_rates_in_a_fresh_process(args: argparse.Namespace) -> dict[int, float]:
    """The raw loop's samples/s per thread count, measured by this script in a new process."""
    with tempfile.TemporaryDirectory(prefix="train-phases-") as tmp:
        answer = Path(tmp) / "raw.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--config", str(args.config)]
        cmd += ["--data-dir", str(args.data_dir), "--skip-fit", "--raw-steps", str(args.raw_steps)]
        cmd += ["--threads", str(args.threads), "--raw-json", str(answer)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return {int(k): float(v) for k, v in json.loads(answer.read_text()).items()}


def _raw_rates(cfg: Any, args: argparse.Namespace) -> dict[int, float]:
    """The raw loop's samples/s per thread count on the train rows, in this process."""
    from longtail.models import fit_feature_spec
    from longtail.train.driver import resolve_inputs
    from longtail.train.finish import build_model_config

    layout, tc = Layout(cfg.data_dir), cfg.train
    inputs = resolve_inputs(layout, strategy=cfg.resampling.strategy)
    rows = pl.read_parquet([str(f) for f in inputs.train_files])
    spec = fit_feature_spec(
        rows,
        hash_buckets_user=tc.hash_buckets_user,
        hash_buckets_item=tc.hash_buckets_item,
        sequence_length=tc.sequence_length,
    )
    model_cfg = build_model_config(tc, spec)
    kwargs = {k: v for k, v in model_cfg.to_json().items() if k != "sparse_ids"}
    kwargs["over_hidden"] = tuple(model_cfg.over_hidden)
    arrays = encode(rows, spec)
    labels = rows["label"].cast(pl.Float32).to_numpy()
    run = _raw_loop()
    raw: dict[int, float] = {}
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        raw[threads] = run(
            "sparse_adam" if tc.optimizer == "sparse_adam" else "dense_adam",
            arrays=arrays,
            labels=labels,
            model_kwargs=kwargs,
            batch_size=tc.batch_size,
            steps=args.raw_steps,
            warmup=10,
            device="cpu",
            lr=tc.learning_rate,
            mixed=False,
        )
    return raw


def _print(
    args: argparse.Namespace,
    tc: Any,
    rows: int,
    load: float,
    load_after: float,
    result: Any,
    whole: float,
    raw: dict[int, float],
) -> None:
    print(
        f"train rows={rows:,} batch={tc.batch_size} epochs={tc.epochs} "
        f"optimizer={tc.optimizer} shuffle_buffer={tc.shuffle_buffer_rows} "
        f"cache_train_rows={tc.cache_train_rows} "
        f"load before={load:.2f} after fit={load_after:.2f}"
    )
    if result is not None:
        hist = result.history
        train_s = sum(h.get("train_seconds", 0.0) for h in hist)
        wait_s = sum(h.get("data_wait_seconds", 0.0) for h in hist)
        val_s = sum(h.get("val_seconds", 0.0) for h in hist)
        samples = sum(h["train_rows"] for h in hist)
        fit_s = SPENT["trainer_fit"]
        phases = {
            "prepare": SPENT["materialize"],
            "ray_train": fit_s - train_s - val_s,
            "epochs_compute": train_s - wait_s,
            "epochs_ingest": wait_s,
            "epochs_val": val_s,
            "calibration": SPENT["calibration"],
            "scoring": SPENT["scoring"],
            "evaluation": SPENT["evaluation"],
        }
        phases["save/other"] = whole - sum(phases.values())
        print(f"{'phase':<16}{'seconds':>9}{'share':>8}")
        for name, sec in phases.items():
            print(f"{name:<16}{sec:>9.1f}{sec / whole:>8.1%}")
        print(f"{'whole fit':<16}{whole:>9.1f}")
        step_rate = samples / whole
        epoch_rate = samples / max(train_s, 1e-9)
        where = "the driver's process" if result.resources["in_process"] else "Ray Train workers"
        print(f"epochs run={len(hist)}, samples trained={samples:,.0f}, in {where}")
        print("train_loss per epoch: " + ", ".join(f"{h['train_loss']:.6f}" for h in hist))
        print(f"train step   {step_rate:>10,.0f} samples/s (rows x epochs / whole fit)")
        print(f"epoch loops  {epoch_rate:>10,.0f} samples/s (rows x epochs / train_seconds)")
        where_raw = "a fresh process" if args.raw_where == "fresh" else "the fit's process"
        print(f"raw loop in {where_raw}:")
        for threads, rate in raw.items():
            print(
                f"raw loop {threads} thread(s) {rate:>10,.0f} samples/s; train step at "
                f"{step_rate / rate:.0%}, epoch loops at {epoch_rate / rate:.0%}"
            )
        outside = sum(OUTSIDE.values())
        parts = ", ".join(f"{name} {sec:.1f} s" for name, sec in OUTSIDE.items())
        with_outside = samples / (whole + outside)
        print(
            f"before fit: {parts}; with them the step does {with_outside:,.0f} samples/s, "
            f"{with_outside / max(raw.values()):.0%} of the fastest raw loop"
        )
    else:
        for threads, rate in raw.items():
            print(f"raw loop {threads} thread(s) {rate:>10,.0f} samples/s")


if __name__ == "__main__":
    main()
