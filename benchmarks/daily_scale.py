"""The daily job at growing sizes: per-step time and peak memory, and how they grow.

For each size, a synthetic shop like the demo's (``jobs/configs/demo.toml``: 3,000
users, 1,500 items, 45 days, about 174k events) with users and items scaled by
the same factor (the days stay 45, so a "day" of the job grows with the shop), is
run through ``jobs/daily.py`` (backtest included) in a fresh data dir. A sampler
sums the resident memory of the job's whole process tree (the driver, the Ray
GCS and raylet it starts, and every Ray worker) once per ``--interval``; each
step's peak is the highest sample inside the step's start and end (from the
run manifest). RSS counts pages shared by several processes (Ray's object
store in ``/dev/shm``, torch libraries) once per process: an upper bound. So the
sampler also sums PSS (``/proc/PID/smaps_rollup``: each shared page divided among
the processes that map it), which is what the tree really holds. The
sampler also sums the tree's CPU seconds (user + system, reaped children included),
so each step has its CPU time too, which a loaded machine moves far less than wall time.

The growth exponent between two sizes is log(t2 / t1) / log(n2 / n1) with n the
events the shop really has (1: linear; 2: quadratic). The load average is
printed next to each size: on a shared machine the times move with it.

python benchmarks/daily_scale.py --events 1M,3M,10M [--work-dir DIR] [--interval 1]
                                 [--config jobs/configs/demo.toml] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from longtail.paths import DailyRun, Layout

ROOT = Path(__file__).resolve().parents[1]
DEMO_EVENTS = 173_844  # events of demo.toml's shop (3,000 users, seed 7)
GB = 1024**3
nan_ = float("nan")


def parse_size(text: str) -> int:
    """``"1M"`` -> 1_000_000, ``"500k"`` -> 500_000, ``"2500000"`` -> 2_500_000."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKmM]?)\s*", text)
    if m is None:
        msg = f"a size is a number with an optional k or M suffix. Got {text!r} instead."
        raise argparse.ArgumentTypeError(msg)
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def scaled_config(base: Path, *, events: int) -> tuple[str, int, int]:
    """The base config's text with users and items scaled to about ``events`` events."""
    text = base.read_text(encoding="utf-8")
    users = int(re.search(r"^n_users\s*=\s*(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    items = int(re.search(r"^n_items\s*=\s*(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    factor = events / DEMO_EVENTS
    n_users, n_items = max(1, round(users * factor)), max(1, round(items * factor))
    text = re.sub(r"^n_users\s*=.*$", f"n_users = {n_users}", text, flags=re.M)
    text = re.sub(r"^n_items\s*=.*$", f"n_items = {n_items}", text, flags=re.M)
    return text, n_users, n_items


@dataclass
class Sampler:
    """Sums the RSS of a process and all its descendants, on a thread."""

    pid: int
    interval: float
    # t, driver RSS, tree RSS, tree PSS
    samples: list[tuple[float, float, float, float]] = field(default_factory=list)
    cpu: list[tuple[float, float]] = field(default_factory=list)  # t, tree CPU seconds so far
    loads: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _one(self) -> None:
        try:
            root = psutil.Process(self.pid)
            driver = root.memory_info().rss
            tree = driver
            pss = _pss(root.pid, driver)
            cpu = _cpu_seconds(root)
            for child in root.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                    tree += rss
                    pss += _pss(child.pid, rss)
                    cpu += _cpu_seconds(child)
                except psutil.Error:
                    continue  # a worker that just exited
        except psutil.Error:
            return
        now = time.time()
        self.samples.append((now, driver / GB, tree / GB, pss / GB))
        self.cpu.append((now, cpu))
        self.loads.append(os.getloadavg()[0])

    def run(self) -> None:
        while not self._stop.is_set():
            self._one()
            self._stop.wait(self.interval)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def cpu_between(self, start: float, end: float) -> float:
        """Tree CPU seconds spent between two times (nearest samples)."""
        if not self.cpu:
            return float("nan")
        first = min(self.cpu, key=lambda s: abs(s[0] - start))[1]
        last = min(self.cpu, key=lambda s: abs(s[0] - end))[1]
        return last - first

    def peak(self, start: float = 0.0, end: float = math.inf) -> tuple[float, float, float]:
        """Highest driver RSS, tree RSS and tree PSS between two times."""
        inside = [s[1:] for s in self.samples if start <= s[0] <= end]
        if not inside:
            return float("nan"), float("nan"), float("nan")
        return tuple(max(s[i] for s in inside) for i in range(3))  # type: ignore[return-value]


def _pss(pid: int, rss: int) -> int:
    """A process's PSS in bytes (``smaps_rollup``); its RSS where the kernel has no rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss


def _cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU of a process and of its reaped children (Ray workers via raylet)."""
    t = proc.cpu_times()
    return float(t.user + t.system + t.children_user + t.children_system)


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def read_steps(data_dir: Path) -> list[dict[str, Any]]:
    """Every step record of the run, in run order (shared steps first)."""
    layout = Layout(data_dir)
    days = sorted(layout.runs.glob("date=*/"))
    manifests = [layout.shared_steps_manifest, *(DailyRun(day).manifest for day in days)]
    steps: list[dict[str, Any]] = []
    for path in manifests:
        if not path.is_file():
            continue
        for name, rec in json.loads(path.read_text()).get("steps", {}).items():
            # A date's manifest repeats the shared steps it used (ingest): once is enough.
            if rec.get("started") and rec.get("ended") and name not in {s["step"] for s in steps}:
                steps.append({"step": name, **rec})
    return sorted(steps, key=lambda r: _ts(r["started"]))


def run_size(events: int, *, base: Path, work: Path, interval: float, nice: int) -> dict[str, Any]:
    """Run the daily job on a fresh shop of about ``events`` events; its figures."""
    label = f"{events / 1e6:g}M" if events >= 1_000_000 else f"{events / 1e3:g}k"
    folder = work / label
    data_dir = folder / "data"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    text, n_users, n_items = scaled_config(base, events=events)
    config = folder / "config.toml"
    config.write_text(text, encoding="utf-8")
    cmd = [sys.executable, "jobs/daily.py", "--config", str(config), "--data-dir", str(data_dir)]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    print(f"[{label}] {n_users} users, {n_items} items: {' '.join(cmd)}", flush=True)
    load_before = os.getloadavg()[0]
    t0 = time.time()
    with (folder / "stdout.log").open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid, interval)
        thread = sampler.start()
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            # Stopped by hand (a size that cannot finish in time): keep what it measured.
            proc.terminate()
            rc = proc.wait()
            print(f"[{label}] interrupted: the table has the steps that finished", flush=True)
        sampler.stop()
        thread.join()
    wall = time.time() - t0
    summary = Layout(data_dir).ingest_summary
    real_events = json.loads(summary.read_text())["accepted"] if summary.is_file() else events
    steps = []
    for rec in read_steps(data_dir):
        driver, tree, pss = sampler.peak(_ts(rec["started"]), _ts(rec["ended"]))
        steps.append(
            {
                "step": rec["step"],
                "status": rec["status"],
                "seconds": float(rec["seconds"]),
                "cpu_seconds": sampler.cpu_between(_ts(rec["started"]), _ts(rec["ended"])),
                "peak_driver_gb": driver,
                "peak_tree_gb": tree,
                "peak_tree_pss_gb": pss,
            }
        )
    driver, tree, pss = sampler.peak()
    loads = sampler.loads or [float("nan")]
    result = {
        "label": label,
        "events_target": events,
        "events": real_events,
        "n_users": n_users,
        "n_items": n_items,
        "rc": rc,
        "wall_seconds": wall,
        "cpu_seconds": sampler.cpu[-1][1] if sampler.cpu else float("nan"),
        "peak_driver_gb": driver,
        "peak_tree_gb": tree,
        "peak_tree_pss_gb": pss,
        "load_before": load_before,
        "load_mean": sum(loads) / len(loads),
        "load_max": max(loads),
        "steps": steps,
        "command": " ".join(cmd),
    }
    (folder / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(
        f"[{label}] rc={rc} {wall:.0f} s, peak RSS tree {tree:.2f} GB "
        f"(driver {driver:.2f} GB), PSS tree {pss:.2f} GB, load mean {result['load_mean']:.2f}",
        flush=True,
    )
    return result


def exponent(t1: float, t2: float, n1: float, n2: float) -> float:
    """Growth exponent between two sizes: log(t2 / t1) / log(n2 / n1)."""
    if t1 <= 0 or t2 <= 0 or n1 == n2:
        return float("nan")
    return math.log(t2 / t1) / math.log(n2 / n1)


def table(results: list[dict[str, Any]]) -> str:
    """Per step and size: wall seconds, tree CPU seconds, peak tree RSS; growth exponents.

    The exponents are of wall time and of CPU time (on a shared machine CPU seconds
    move much less with the load than wall seconds).
    """
    names: list[str] = []
    for r in results:
        for s in r["steps"]:
            if s["step"] not in names:
                names.append(s["step"])
    by = [{s["step"]: s for s in r["steps"]} for r in results]
    head = ["step"]
    for r in results:
        head += [f"{r['label']} wall s", f"{r['label']} CPU s", f"{r['label']} GB"]
        head += [f"{r['label']} PSS GB"]
    for a, b in itertools.pairwise(results):
        head += [f"exp wall {a['label']}->{b['label']}", f"exp CPU {a['label']}->{b['label']}"]
    rows = [head]

    def fmt(x: float, digits: int) -> str:
        return "-" if math.isnan(x) else f"{x:.{digits}f}"

    def cells(name: str, get: Any) -> list[str]:
        row = [name]
        vals: list[tuple[float, float]] = []
        nan = float("nan")
        for r, steps in zip(results, by, strict=True):
            wall, cpu, gb, pss = get(r, steps) or (nan, nan, nan, nan)
            vals.append((wall, cpu))
            row += [fmt(wall, 1), fmt(cpu, 1), fmt(gb, 2), fmt(pss, 2)]
        for i in range(len(results) - 1):
            n1, n2 = results[i]["events"], results[i + 1]["events"]
            for k in (0, 1):
                row.append(fmt(exponent(vals[i][k], vals[i + 1][k], n1, n2), 2))
        return row

    for name in names:
        rows.append(
            cells(
                name,
                lambda _r, s, n=name: (
                    (
                        s[n]["seconds"],
                        s[n].get("cpu_seconds", nan_),
                        s[n]["peak_tree_gb"],
                        s[n].get("peak_tree_pss_gb", nan_),
                    )
                    if n in s
                    else None
                ),
            )
        )
    rows.append(
        cells(
            "whole job",
            lambda r, _s: (
                r["wall_seconds"],
                r.get("cpu_seconds", nan_),
                r["peak_tree_gb"],
                r.get("peak_tree_pss_gb", nan_),
            ),
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", default="1M,3M,10M", help="comma-separated sizes (k, M suffix)")
    p.add_argument("--config", type=Path, default=ROOT / "jobs" / "configs" / "demo.toml")
    p.add_argument("--work-dir", type=Path, default=ROOT / "data" / "scale")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between RSS samples")
    p.add_argument("--nice", type=int, default=10, help="niceness of the job (0: none)")
    p.add_argument("--keep", action="store_true", help="keep each size's data dir")
    p.add_argument("--report", action="store_true", help="only print the table of earlier results")
    args = p.parse_args()
    sizes = [parse_size(s) for s in args.events.split(",") if s.strip()]
    results: list[dict[str, Any]] = []
    for events in sizes:
        label = f"{events / 1e6:g}M" if events >= 1_000_000 else f"{events / 1e3:g}k"
        saved = args.work_dir / label / "result.json"
        if args.report:
            if saved.is_file():
                results.append(json.loads(saved.read_text()))
            continue
        result = run_size(
            events, base=args.config, work=args.work_dir, interval=args.interval, nice=args.nice
        )
        results.append(result)
        if not args.keep:
            shutil.rmtree(args.work_dir / label / "data", ignore_errors=True)
        if result["rc"] != 0:
            print(f"[{label}] the job failed; see {args.work_dir / label / 'stdout.log'}")
            break
    if not results:
        return
    print()
    print(table(results))
    print()
    for r in results:
        print(
            f"{r['label']}: {r['events']:,} events ({r['n_users']:,} users, {r['n_items']:,} "
            f"items), whole job {r['wall_seconds']:.0f} s, peak RSS {r['peak_tree_gb']:.2f} GB "
            f"(driver {r['peak_driver_gb']:.2f} GB; tree PSS "
            f"{r.get('peak_tree_pss_gb', nan_):.2f} GB), load avg before {r['load_before']:.2f}, "
            f"during mean {r['load_mean']:.2f} max {r['load_max']:.2f}"
        )


if __name__ == "__main__":
    main()
