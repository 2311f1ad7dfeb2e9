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
import time

from _sizes import cpu_seconds, demo_config_scaled, peak_gb, run_sizes


def child(events: int) -> None:
    """Generate and build in this process; print one JSON line."""
    from longtail.ingest import generate
    from longtail.training_set.candidate_rows import candidate_rows

    cfg, src = demo_config_scaled(events)
    tables = generate(src, seed=cfg.seed)  # type: ignore[arg-type]
    after_generate = peak_gb()
    last = tables.events["event_time"].max().date()  # type: ignore[union-attr]
    cutoff = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    built = candidate_rows(tables.events, tables.items, cfg, cutoff=cutoff)
    print(
        json.dumps(
            {
                "events": tables.events.height,
                "snapshots": built.snapshots,
                "rows": built.rows.height,
                "cpu_s": round(cpu_seconds() - cpu0, 1),
                "wall_s": round(time.perf_counter() - wall0, 1),
                "peak_after_generate_gb": round(after_generate, 2),
                "peak_after_build_gb": round(peak_gb(), 2),
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
    run_sizes(__file__, args.events)


if __name__ == "__main__":
    main()
