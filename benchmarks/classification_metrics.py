"""The probability metrics of one scope: scikit-learn's functions against ``longtail.metrics``.

    PYTHONPATH=lib python benchmarks/classification_metrics.py [--rows 415000,179000] [--repeats 5]

Per row count, on synthetic labels at a 3% base rate and scores rounded to 5 decimals
(so that they tie, as calibrated probabilities do), the best of ``--repeats`` of:

* scikit-learn: ``roc_auc_score``, ``average_precision_score``, ``log_loss`` (clipped
  scores) and ``brier_score_loss``, each validating its input and the two AUCs each
  sorting the scores (what ``classification_report`` called before 2026-12-04)
* longtail: ``ranked_aucs`` (both areas from one sort) and log loss and Brier in numpy

and the largest relative difference between their values. The train step's evaluation
computes them on 8 scopes (overall and 3 buckets of validation and test).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.metrics import log_loss as sklearn_log_loss

from longtail.metrics.classification import _brier, _log_loss, ranked_aucs


def _sklearn(y: np.ndarray, s: np.ndarray) -> list[float]:
    clipped = np.clip(s, 1e-7, 1 - 1e-7)
    return [
        float(roc_auc_score(y, s)),
        float(average_precision_score(y, s)),
        float(sklearn_log_loss(y, clipped, labels=[0.0, 1.0])),
        float(brier_score_loss(y, s, labels=[0.0, 1.0])),
    ]


def _longtail(y: np.ndarray, s: np.ndarray) -> list[float]:
    return [*ranked_aucs(y, s), _log_loss(y, s), _brier(y, s)]


def _best(
    fn: Callable[[np.ndarray, np.ndarray], list[float]],
    y: np.ndarray,
    s: np.ndarray,
    repeats: int,
) -> tuple[float, list[float]]:
    values = fn(y, s)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(y, s)
        best = min(best, time.perf_counter() - t0)
    return best, values


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", default="415000,179000", help="comma-separated row counts")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    print(f"{'rows':>9} {'scikit-learn ms':>16} {'longtail ms':>12} {'max rel. diff':>14}")
    for n in (int(r) for r in args.rows.split(",")):
        rng = np.random.default_rng(n)
        y = (rng.random(n) < 0.03).astype(np.float64)
        s = np.round(rng.random(n) * 0.1 + 0.02 * y, 5)
        t_sk, v_sk = _best(_sklearn, y, s, args.repeats)
        t_lt, v_lt = _best(_longtail, y, s, args.repeats)
        diff = max(abs(a - b) / abs(a) for a, b in zip(v_sk, v_lt, strict=True))
        print(f"{n:>9,} {t_sk * 1e3:>16.1f} {t_lt * 1e3:>12.1f} {diff:>14.1e}")


if __name__ == "__main__":
    main()
