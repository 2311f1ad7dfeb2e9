"""Peak memory and CPU time of the feature snapshots alone, in one go or per bucket of users.

Each size runs in a fresh subprocess: generate the synthetic shop (demo config,
users and items scaled to about the given events, 45 days), then build both
snapshot tables as the features step does. It prints the CPU seconds of the build
(user + system, which a loaded machine moves much less than wall time) and the
process's peak RSS (``ru_maxrss``) after generating and after building.

python benchmarks/snapshot_memory.py --events 1M,3M [--partition-events 2000000 | 0]
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


def child(events: int, partition_events: int) -> None:
    """Generate and build in this process; print one JSON line."""
    from longtail.config import load_config
    from longtail.features.snapshots import build_features
    from longtail.ingest import generate

    cfg = load_config(ROOT / "jobs" / "configs" / "demo.toml")
    src = cfg.source
    factor = events / DEMO_EVENTS
    src = src.model_copy(  # type: ignore[union-attr]
        update={"n_users": round(src.n_users * factor), "n_items": round(src.n_items * factor)}  # type: ignore[union-attr]
    )
    feats = cfg.features.model_copy(update={"user_partition_events": partition_events or None})
    tables = generate(src, seed=cfg.seed)  # type: ignore[arg-type]
    after_generate = _peak_gb()
    until = tables.events["event_time"].max().date() + dt.timedelta(days=1)  # type: ignore[union-attr]
    cpu0, wall0 = _cpu(), time.perf_counter()
    out = build_features(tables.events, tables.items, feats, until=until)
    print(
        json.dumps(
            {
                "events": tables.events.height,
                "user_rows": out.user.height,
                "item_rows": out.item.height,
                "partition_events": partition_events,
                "cpu_s": _cpu() - cpu0,
                "wall_s": time.perf_counter() - wall0,
                "peak_after_generate_gb": after_generate,
                "peak_after_build_gb": _peak_gb(),
                "user_table_gb": out.user.estimated_size() / 1024**3,
                "load": os.getloadavg()[0],
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", default="1M,3M")
    p.add_argument("--partition-events", type=int, default=2_000_000, help="0: in one go")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.partition_events)
        return
    for text in args.events.split(","):
        n = int(float(text.rstrip("kKmM")) * {"k": 1e3, "m": 1e6}.get(text[-1].lower(), 1))
        cmd = [sys.executable, __file__, "--child", str(n)]
        cmd += ["--partition-events", str(args.partition_events)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
        line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-2000:]
        print(f"{text}: {line}", flush=True)


if __name__ == "__main__":
    main()
