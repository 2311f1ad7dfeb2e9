"""What the per-size benchmarks share: a scaled demo shop, each size in its own process.

``snapshot_memory.py`` and ``training_set.py`` run one subprocess per size (so each
peak RSS is that size's alone) that generates the demo config's shop with users and
items scaled to about the given events and prints one JSON line.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO_EVENTS = 173_844  # events of demo.toml's shop (3,000 users, seed 7)


def peak_gb() -> float:
    """This process's peak resident memory so far, in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    t = os.times()
    return t.user + t.system


def demo_config_scaled(events: int) -> tuple[Any, Any]:
    """The demo config and its synthetic source with users and items scaled to ``events``."""
    from longtail.config import load_config

    cfg = load_config(ROOT / "jobs" / "configs" / "demo.toml")
    src = cfg.source
    factor = events / DEMO_EVENTS
    return cfg, src.model_copy(
        update={"n_users": round(src.n_users * factor), "n_items": round(src.n_items * factor)}  # type: ignore[union-attr]
    )


def run_sizes(script: str, sizes: str, *extra: str) -> None:
    """Run ``script --child N *extra`` once per size of ``sizes`` ("1M,3M") and print its line."""
    for text in sizes.split(","):
        n = int(float(text.rstrip("kKmM")) * {"k": 1e3, "m": 1e6}.get(text[-1].lower(), 1))
        cmd = [sys.executable, script, "--child", str(n), *extra]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
        line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-2000:]
        print(f"{text}: {line}", flush=True)
