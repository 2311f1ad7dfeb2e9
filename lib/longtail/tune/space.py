"""The trials: configurations (strategy x loss) x hyperparameter draws x seeds.

Strategies and losses enter as short string labels (``"smote"``,
``"focal(alpha=0.25,gamma=2)"``); their parameters are looked up from the config
by label, so a trial's point stays flat and readable in Tune's output.

Fairness is built into the list, not left to a random search: every
configuration, the baseline included, is trained at the *same* learning-rate /
embedding-size draws (common random numbers), so no configuration can win by
being the only one whose learning rate was tuned; with ``tune.hyperparameters =
"fixed"`` there is one draw, ``train.learning_rate`` / ``train.embedding_dim``.
Each (configuration, draw) is trained with ``tune.seeds`` seeds. Points are
ordered seed-major (every configuration at seed 0 first), so a time budget that
runs out leaves every configuration with the same number of seeds or one fewer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from longtail.config import Config, LossVariant
from longtail.errors import ConfigError
from longtail.losses import make_loss
from longtail.resampling import STRATEGIES, check_params

__all__ = [
    "BASELINE_LOSS",
    "BASELINE_STRATEGY",
    "TrialSpec",
    "configurations",
    "hyperparameter_draws",
    "is_baseline",
    "loss_label",
    "loss_variants",
    "param_space",
    "strategy_names",
    "trial_points",
    "trial_spec",
]

BASELINE_STRATEGY: Final = "none"
BASELINE_LOSS: Final = "bce"


def loss_label(variant: LossVariant) -> str:
    """Short label of a loss variant: ``"bce"``, ``"focal(alpha=0.25,gamma=2)"``."""
    if not variant.params:
        return variant.loss
    inner = ",".join(f"{k}={v:g}" for k, v in sorted(variant.params.items()))
    return f"{variant.loss}({inner})"


def loss_variants(cfg: Config) -> dict[str, LossVariant]:
    """Label -> loss variant, always with the plain BCE of the baseline.

    Raises
    ------
    ConfigError
        Two variants share a label, or a loss parameter is unknown.
    """
    out: dict[str, LossVariant] = {}
    for variant in [LossVariant(loss=BASELINE_LOSS), *cfg.tune.losses]:
        label = loss_label(variant)
        if label in out and variant != out[label]:
            msg = f"tune.losses: two variants are labelled {label!r}. Got {variant!r} instead."
            raise ConfigError(msg)
        make_loss(variant.loss, variant.params, n_negative=10, n_positive=1)
        out[label] = variant
    return out


def strategy_names(cfg: Config) -> list[str]:
    """The strategies searched: ``tune.strategies`` or every registered one, baseline first.

    Raises
    ------
    ConfigError
        An unknown strategy, or parameters imbalanced-learn refuses.
    """
    names: list[str] = [*cfg.tune.strategies] or list(STRATEGIES)
    unknown = sorted(set(names) - set(STRATEGIES))
    extra = sorted(set(cfg.tune.strategy_params) - set(STRATEGIES))
    if unknown or extra:
        msg = (
            f"tune.strategies and tune.strategy_params must name registered strategies "
            f"{sorted(STRATEGIES)}. Got {unknown + extra!r} instead."
        )
        raise ConfigError(msg)
    for name in names:
        check_params(name, cfg.tune.strategy_params.get(name, {}))
    return [BASELINE_STRATEGY, *[n for n in dict.fromkeys(names) if n != BASELINE_STRATEGY]]


def is_baseline(point: Mapping[str, Any], cfg: Config) -> bool:
    """Whether a trial's point belongs to the baseline configuration (any draw, any seed)."""
    del cfg  # the baseline is the same configuration whatever the config
    return (point.get("strategy"), point.get("loss")) == (BASELINE_STRATEGY, BASELINE_LOSS)


def configurations(cfg: Config) -> list[tuple[str, str]]:
    """The (strategy, loss label) pairs compared, the baseline first.

    Every strategy x loss, or ``tune.num_samples`` of them (the baseline plus a
    seeded random choice of the others) when set.
    """
    pairs = [(s, loss) for s in strategy_names(cfg) for loss in loss_variants(cfg)]
    base = (BASELINE_STRATEGY, BASELINE_LOSS)
    others = [p for p in pairs if p != base]
    n = cfg.tune.num_samples
    if n is not None and n - 1 < len(others):
        pick = np.random.default_rng(cfg.seed).permutation(len(others))[: max(n - 1, 0)]
        others = [others[i] for i in sorted(pick)]
    return [base, *others]


def hyperparameter_draws(cfg: Config) -> list[tuple[float, int]]:
    """The (learning rate, embedding size) draws every configuration is trained at.

    ``"fixed"``: the ``train`` values. ``"searched"``: the ``train`` values first,
    then ``draws - 1`` seeded draws (log-uniform learning rate in
    ``[learning_rate_min, learning_rate_max]``, embedding size from ``embedding_dims``).
    """
    tc = cfg.tune
    first = (float(cfg.train.learning_rate), int(cfg.train.embedding_dim))
    if tc.hyperparameters == "fixed":
        return [first]
    rng = np.random.default_rng(cfg.seed + 7_919)
    dims = list(dict.fromkeys(tc.embedding_dims))
    lo, hi = math.log(tc.learning_rate_min), math.log(tc.learning_rate_max)
    out = [first]
    for _ in range(tc.draws - 1):
        lr = float(math.exp(rng.uniform(lo, hi))) if hi > lo else tc.learning_rate_min
        out.append((lr, int(dims[int(rng.integers(len(dims)))])))
    return out


def trial_points(cfg: Config) -> list[dict[str, Any]]:
    """Every trial's point: configuration x draw x seed, seed-major (see the module doc)."""
    pairs = configurations(cfg)
    draws = hyperparameter_draws(cfg)
    return [
        {
            "strategy": strategy,
            "loss": loss,
            "learning_rate": lr,
            "embedding_dim": dim,
            "draw": d,
            "seed": cfg.seed + replica,
            "replica": replica,
        }
        for replica in range(cfg.tune.seeds)
        for strategy, loss in pairs
        for d, (lr, dim) in enumerate(draws)
    ]


def param_space(cfg: Config) -> dict[str, Any]:
    """The Ray Tune ``param_space``: a grid over :func:`trial_points` under the key ``point``.

    Raises
    ------
    ConfigError
        An unknown strategy, strategy parameter or loss parameter.
    """
    from ray import tune

    return {"point": tune.grid_search(trial_points(cfg))}


@dataclass(frozen=True)
class TrialSpec:
    """One trial's settings, resolved from its Tune config."""

    strategy: str
    strategy_params: dict[str, Any]
    loss: str
    loss_params: dict[str, float]
    loss_label: str
    learning_rate: float
    embedding_dim: int
    seed: int = 0
    draw: int = 0
    replica: int = 0

    @property
    def label(self) -> str:
        """``"strategy / loss"``, as the leaderboard and the verdict name it."""
        return f"{self.strategy} / {self.loss_label}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "strategy": self.strategy,
            "strategy_params": dict(self.strategy_params),
            "loss": self.loss,
            "loss_params": dict(self.loss_params),
            "loss_label": self.loss_label,
            "learning_rate": self.learning_rate,
            "embedding_dim": self.embedding_dim,
            "seed": self.seed,
            "draw": self.draw,
            "replica": self.replica,
        }

    def params_json(self) -> tuple[str, str]:
        """Strategy and loss parameters as compact, key-sorted JSON strings."""
        return (
            json.dumps(self.strategy_params, sort_keys=True, default=str),
            json.dumps(self.loss_params, sort_keys=True),
        )


def trial_spec(point: Mapping[str, Any], cfg: Config) -> TrialSpec:
    """Resolve a Tune config (labels) into a :class:`TrialSpec` (names and parameters).

    Raises
    ------
    ConfigError
        The point names a loss label or strategy the config does not know.
    """
    variants = loss_variants(cfg)
    label = str(point["loss"])
    if label not in variants:
        msg = f"unknown loss label {label!r}; known: {sorted(variants)}. Got {label!r} instead."
        raise ConfigError(msg)
    strategy = str(point["strategy"])
    if strategy not in STRATEGIES:
        msg = f"unknown strategy {strategy!r}. Got {strategy!r} instead."
        raise ConfigError(msg)
    variant = variants[label]
    return TrialSpec(
        strategy=strategy,
        strategy_params=dict(cfg.tune.strategy_params.get(strategy, {})),
        loss=variant.loss,
        loss_params=dict(variant.params),
        loss_label=label,
        learning_rate=float(point["learning_rate"]),
        embedding_dim=int(point["embedding_dim"]),
        seed=int(point.get("seed", cfg.seed)),
        draw=int(point.get("draw", 0)),
        replica=int(point.get("replica", 0)),
    )
