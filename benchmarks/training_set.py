"""Time and peak memory of the training set's candidate rows alone, as the shop grows.

The candidate rows replay candidate generation at every snapshot time before the
cutoff (40-odd of them on a 45-day shop) for a few hundred sampled users each;
they were the largest part of the features step (the co-view self-join per
snapshot time). Each size runs in a fresh subprocess: generate the synthetic
shop (demo config, users and items scaled to about the given events, 45 days),
then ``training_set.candidate_rows`` with the cutoff at the end of the log. It
prints CPU and wall seconds of the build, the process's peak RSS (``ru_maxrss``)
after generating and after building, and the load average.

python benchmarks/training_set.py --events 1M[,3M,10M]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_EVENTS = 173_844


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def child(events: int) -> None:
    """Generate and build in this process; print one JSON line."""
    from longtail.config import load_config
    from longtail.ingest import generate
    from longtail.training_set.candidate_rows import candidate_rows

    cfg = load_config(ROOT / "jobs" / "configs" / "demo.toml")
    src = cfg.source
    factor = events / DEMO_EVENTS
    src = src.model_copy(  # type: ignore[union-attr]
        update={"n_users": round(src.n_users * factor), "n_items": round(src.n_items * factor)}  # type: ignore[union-attr]
    )
    tables = generate(src, seed=cfg.seed)  # type: ignore[arg-type]
    after_generate = _peak_gb()
    last = tables.events["event_time"].max().date()  # type: ignore[union-attr]
    cutoff = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    cpu0, wall0 = _cpu(), time.perf_counter()
    built = candidate_rows(tables.events, tables.items, cfg, cutoff=cutoff)
    print(
        json.dumps(
            {
                "events": tables.events.height,
                "snapshots": built.snapshots,
                "rows": built.rows.height,
                "cpu_s": round(_cpu() - cpu0, 1),
                "wall_s": round(time.perf_counter() - wall0, 1),
                "peak_after_generate_gb": round(after_generate, 2),
                "peak_after_build_gb": round(_peak_gb(), 2),
                "load": os.getloadavg()[0],
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", default="1M")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child)
        return
    for text in args.events.split(","):
        n = int(float(text.rstrip("kKmM")) * {"k": 1e3, "m": 1e6}.get(text[-1].lower(), 1))
        cmd = [sys.executable, __file__, "--child", str(n)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
        line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-2000:]
        print(f"{text}: {line}", flush=True)


if __name__ == "__main__":
    main()
