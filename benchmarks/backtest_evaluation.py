"""The backtest's evaluation phase at growing sizes: time and driver memory per part.

The evaluation runs in the driver after the backtest's chain (features, train,
score) and holds every served user's lists of five systems at once; this measures
its parts without the chain. For each size a synthetic shop like the demo's
(users and items scaled with the events, as ``benchmarks/daily_scale.py`` does) is
ingested into ``--work-dir``, then the parts run in order: the served users,
the holdout truth, the baseline inputs, the four baselines, then every metric of
``evaluate_systems`` and ``candidate_recall``. Two stand-ins replace the chain's
outputs, with the shapes it writes: the model's lists are the ``category_popular``
lists (k per served user), the candidates ``--candidates`` random items per served
user with a source. The popularity buckets are the top 20% of items by views
(head) and the rest (tail). A thread samples the process's RSS every 0.1 s; each
part's peak is the highest sample while it ran.

python benchmarks/backtest_evaluation.py --events 1M,3M,10M [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from daily_scale import parse_size, scaled_config  # noqa: E402
from longtail import schema as S  # noqa: E402
from longtail.backtest import pipeline as P  # noqa: E402
from longtail.backtest.baselines import BaselineInputs, build_baselines  # noqa: E402
from longtail.backtest.evaluate import (  # noqa: E402
    MODEL,
    EvaluationInputs,
    candidate_recall,
    evaluate_systems,
)
from longtail.config import load_config  # noqa: E402
from longtail.ingest import load_tables, run_ingest  # noqa: E402
from longtail.paths import Layout  # noqa: E402
from longtail.scoring.pipeline import expected_users  # noqa: E402

GB = 1024**3


class Peak:
    """The highest RSS of this process since the last :meth:`reset`, sampled on a thread."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.value = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            self.value = max(self.value, self.proc.memory_info().rss)
            time.sleep(0.1)

    def reset(self) -> int:
        self.value = self.proc.memory_info().rss
        return self.value


def measure(rows: list[list[Any]], peak: Peak, label: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` and append (part, seconds, RSS before, peak) to ``rows``."""
    before = peak.reset()
    t = time.perf_counter()
    out = fn()
    rows.append([label, time.perf_counter() - t, before / GB, peak.value / GB])
    return out


def one_size(events: int, work: Path, n_candidates: int) -> tuple[list[list[Any]], dict[str, int]]:
    """Every part's row for a shop of about ``events`` events."""
    folder = work / f"shop-{events}"
    folder.mkdir(parents=True, exist_ok=True)
    text, _, n_items = scaled_config(ROOT / "jobs/configs/demo.toml", events=events)
    text = text.replace('data_dir = "data/demo"', f'data_dir = "{folder / "data"}"')
    (folder / "config.toml").write_text(text, encoding="utf-8")
    cfg = load_config(folder / "config.toml")
    layout = Layout(cfg.data_dir)
    if not layout.table("events").is_file():
        run_ingest(cfg)
    tables = load_tables(layout)
    ev, items = tables.events, tables.items
    peak, rows = Peak(), []
    _, cutoff, end = P._holdout_window(ev, date=None, holdout_days=cfg.backtest.holdout_days)
    served = measure(rows, peak, "served users", lambda: expected_users(ev, cfg, as_of=cutoff))
    truth, _, users = measure(
        rows, peak, "holdout truth",
        lambda: P._holdout_users(cfg, ev, served, cutoff=cutoff, end=end),
    )  # fmt: skip
    inp_b = measure(
        rows, peak, "baseline inputs",
        lambda: BaselineInputs.build(
            ev, items, as_of=cutoff, window_days=cfg.backtest.popular_window_days,
            exclude_purchased=cfg.score.exclude_purchased,
        ),
    )  # fmt: skip
    base = measure(
        rows, peak, "four baselines",
        lambda: build_baselines(
            inp_b, served, k=cfg.score.k, seed=cfg.seed,
            top_categories=cfg.backtest.top_categories,
        ),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    n = served.len() * n_candidates
    cands = pl.DataFrame(
        {
            S.USER_ID: np.repeat(served.to_numpy(), n_candidates),
            S.ITEM_ID: rng.integers(0, n_items, n),
            "source": rng.choice(["history", "coview", "category", "popular", "tail"], n),
        }
    )
    pop = inp_b.views.group_by(S.ITEM_ID).len("popularity")
    head = pl.col("popularity").rank("ordinal", descending=True) <= 0.2 * pop.height
    buckets = pop.select(
        S.ITEM_ID, pl.when(head).then(pl.lit("head")).otherwise(pl.lit("tail"))
        .alias(S.POPULARITY_BUCKET),
    )  # fmt: skip
    item_users = inp_b.past.group_by(S.ITEM_ID).agg(pl.col(S.USER_ID).n_unique().alias("users"))
    inputs = EvaluationInputs(
        truth=truth, users=users, k=cfg.score.k, buckets=buckets, catalog=inp_b.available,
        popularity=pop, item_users=item_users, n_users=max(inp_b.past[S.USER_ID].n_unique(), 1),
        rounds=cfg.backtest.bootstrap_rounds, seed=cfg.seed,
    )  # fmt: skip
    systems = {MODEL: base["category_popular"], **base}
    measure(rows, peak, "evaluate_systems (5 systems)", lambda: evaluate_systems(systems, inputs))
    evaluated = truth.join(pl.DataFrame({S.USER_ID: users}), on=S.USER_ID, how="semi")
    measure(rows, peak, "candidate_recall", lambda: candidate_recall(evaluated, cands))
    facts = {
        "events": ev.height, "served": served.len(), "evaluated": users.len(),
        "candidates": cands.height,
    }  # fmt: skip
    return rows, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1M,3M", help="comma-separated sizes (1M, 500k)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench_backtest")
    parser.add_argument("--candidates", type=int, default=200, help="candidates per served user")
    args = parser.parse_args()
    for size in args.events.split(","):
        rows, facts = one_size(parse_size(size), args.work_dir, args.candidates)
        print(f"\n{size}: " + ", ".join(f"{k} {v:,}" for k, v in facts.items()), end="")
        print(f"; load {os.getloadavg()[0]:.1f}")
        print(f"| {'part':30s} | {'s':>7s} | {'RSS before GB':>13s} | {'peak GB':>7s} |")
        print(f"|{'-' * 32}|{'-' * 9}|{'-' * 15}|{'-' * 9}|")
        for label, sec, before, top in rows:
            print(f"| {label:30s} | {sec:7.1f} | {before:13.2f} | {top:7.2f} |")


if __name__ == "__main__":
    main()
