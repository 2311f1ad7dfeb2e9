"""Bootstrap confidence intervals on the test split, and a verdict a person can read.

Comparisons are *paired*: the baseline and a candidate are scored on the same
resampled rows in each bootstrap round, so the interval of the difference is
much tighter than two independent intervals would suggest, and "beyond noise"
means the difference's interval excludes zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Interval",
    "SeedInterval",
    "SeedValues",
    "WeightedScore",
    "bootstrap_values",
    "cluster_weights",
    "seed_interval",
    "verdict",
]

Metric = Callable[[NDArray[np.float64], NDArray[np.float64]], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the interval."""
        return value < self.low or value > self.high


def verdict(
    *, metric_name: str, best: str, baseline: str, diff: Interval, baseline_value: float
) -> str:
    """A short plain-language verdict on the best strategy against the baseline."""
    rel = diff.estimate / baseline_value if baseline_value else float("nan")
    span = f"{diff.level:.0%} interval {diff.low:+.4f} to {diff.high:+.4f}"
    if best == baseline:
        return (
            f"The baseline ({baseline}) is the best configuration on {metric_name}; "
            "no imbalance strategy beat it."
        )
    if diff.low > 0:
        return (
            f"{best} beats the baseline ({baseline}) on {metric_name} by {diff.estimate:+.4f} "
            f"({rel:+.1%}); the {span} excludes zero, so the gain is beyond noise."
        )
    if diff.high < 0:
        return (
            f"{best} won the search but scores {diff.estimate:+.4f} against the baseline "
            f"({baseline}) on the test split ({span}): it does worse; keep the baseline."
        )
    return (
        f"{best} scores {diff.estimate:+.4f} ({rel:+.1%}) against the baseline ({baseline}) on "
        f"{metric_name}, but the {span} includes zero: the difference is within noise."
    )


# --------------------------------------------------------------------------- seeds x test users

#: A trial's metric on weighted test elements: ``(R x n) weights -> R values``.
WeightedScore = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def cluster_weights(
    units: NDArray[np.int64], *, rounds: int, seed: int, chunk: int | None = None
) -> Iterator[NDArray[np.float64]]:
    """Bootstrap weights of the elements, whole clusters at a time, in chunks of rounds.

    Each round draws every cluster (user) a multiplicity from
    ``Multinomial(U, 1/U)``; an element weighs its cluster's multiplicity. The
    same ``seed`` gives the same rounds, so values computed trial by trial are
    paired round by round.

    Parameters
    ----------
    units
        Cluster index of each element, ``0 .. U-1``.
    rounds
        Bootstrap rounds.
    seed
        Seed of the draws.
    chunk
        Rounds per yielded block (default: about 2M weights per block).
    """
    rng = np.random.default_rng(seed)
    n_units = int(units.max()) + 1 if units.size else 0
    step = chunk or max(1, 2_000_000 // max(units.size, 1))
    done = 0
    while done < rounds:
        r = min(step, rounds - done)
        counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=r)
        yield counts[:, units].astype(np.float64)
        done += r


def bootstrap_values(
    score: WeightedScore, units: NDArray[np.int64], *, rounds: int, seed: int
) -> NDArray[np.float64]:
    """``score`` under each of ``rounds`` cluster-bootstrap weightings (:func:`cluster_weights`)."""
    parts = [score(w) for w in cluster_weights(units, rounds=rounds, seed=seed)]
    return np.concatenate(parts) if parts else np.zeros(0)


@dataclass(frozen=True)
class SeedValues:
    """One trained seed's metric: on the whole test split, and under every bootstrap round."""

    full: float
    rounds: NDArray[np.float64]


@dataclass(frozen=True)
class SeedInterval(Interval):
    """An interval whose width combines test-sample and training-seed variance.

    Attributes
    ----------
    se_test
        Standard error from resampling test users (seed-averaged metric).
    se_seed
        Standard error of the seed mean(s) from the spread between seeds; 0.0
        when a side has one seed only (then ``seed_noise_known`` is False).
    df
        Welch-Satterthwaite degrees of freedom of the t quantile (inf: normal).
    seeds
        Seeds on each side (candidate, baseline; baseline 0 for a single interval).
    """

    se_test: float = float("nan")
    se_seed: float = 0.0
    df: float = float("inf")
    seeds: tuple[int, int] = (0, 0)
    seed_noise_known: bool = False


def _mean_rounds(values: Sequence[SeedValues]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = np.mean(np.stack([v.rounds for v in values]), axis=0)
    return out


def seed_interval(
    candidate: Sequence[SeedValues],
    baseline: Sequence[SeedValues] | None = None,
    *,
    level: float = 0.95,
) -> SeedInterval:
    """Interval of a seed-averaged metric, or of its difference to the baseline's.

    The estimate is ``mean_s m(candidate_s) - mean_s m(baseline_s)`` on the whole
    test split. Its variance is the sum of two parts:

    - test sample: the variance over bootstrap rounds (whole users resampled, the
      same rounds for both sides, so the difference is paired) of the
      seed-averaged difference;
    - training noise: ``var_s(m(candidate_s)) / S_c + var_s(m(baseline_s)) / S_b``,
      the between-seed variance of each side's mean.

    The interval is ``estimate +- t * se`` with Welch-Satterthwaite degrees of
    freedom for the seed parts (few seeds give wide t quantiles; the bootstrap
    part counts as known). With one seed on a side its training noise cannot be
    estimated: it adds nothing and ``seed_noise_known`` is False.

    Raises
    ------
    ValueError
        A side has no seeds, or the rounds of the seeds differ in length.
    """
    from scipy.stats import t as student_t

    sides = [list(candidate)] + ([list(baseline)] if baseline is not None else [])
    if any(not side for side in sides):
        msg = "seed_interval: every side needs at least one seed. Got an empty side instead."
        raise ValueError(msg)
    sign = [1.0, -1.0]
    estimate = sum(
        s * float(np.mean([v.full for v in side])) for s, side in zip(sign, sides, strict=False)
    )
    rounds = np.zeros_like(sides[0][0].rounds)
    for s, side in zip(sign, sides, strict=False):
        rounds = rounds + s * _mean_rounds(side)
    rounds = rounds[np.isfinite(rounds)]
    var_test = float(np.var(rounds, ddof=1)) if rounds.size > 1 else 0.0
    parts = []
    for side in sides:
        if len(side) > 1:
            spread = float(np.var([v.full for v in side], ddof=1)) / len(side)
            parts.append((spread, len(side) - 1))
    var_seed = sum(v for v, _ in parts)
    total = var_test + var_seed
    denom = sum(v * v / k for v, k in parts)
    df = total * total / denom if denom > 0 else float("inf")
    alpha = (1 - level) / 2
    q = float(student_t.ppf(1 - alpha, df)) if math.isfinite(df) else float(_z(1 - alpha))
    half = q * math.sqrt(total)
    return SeedInterval(
        estimate=estimate,
        low=estimate - half,
        high=estimate + half,
        level=level,
        se_test=math.sqrt(var_test),
        se_seed=math.sqrt(var_seed),
        df=df,
        seeds=(len(sides[0]), len(sides[1]) if len(sides) > 1 else 0),
        seed_noise_known=all(len(side) > 1 for side in sides),
    )


def _z(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))
