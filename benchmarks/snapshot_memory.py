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
import time

from _sizes import cpu_seconds, demo_config_scaled, peak_gb, run_sizes


def child(events: int, partition_events: int) -> None:
    """Generate and build in this process; print one JSON line."""
    from longtail.features.snapshots import build_features
    from longtail.ingest import generate

    cfg, src = demo_config_scaled(events)
    feats = cfg.features.model_copy(update={"user_partition_events": partition_events or None})
    tables = generate(src, seed=cfg.seed)  # type: ignore[arg-type]
    after_generate = peak_gb()
    until = tables.events["event_time"].max().date() + dt.timedelta(days=1)  # type: ignore[union-attr]
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    out = build_features(tables.events, tables.items, feats, until=until)
    print(
        json.dumps(
            {
                "events": tables.events.height,
                "user_rows": out.user.height,
                "item_rows": out.item.height,
                "partition_events": partition_events,
                "cpu_s": cpu_seconds() - cpu0,
                "wall_s": time.perf_counter() - wall0,
                "peak_after_generate_gb": after_generate,
                "peak_after_build_gb": peak_gb(),
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
    run_sizes(__file__, args.events, "--partition-events", str(args.partition_events))


if __name__ == "__main__":
    main()
