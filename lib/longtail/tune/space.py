"""The search space: strategy x loss x learning rate x embedding size, and the baseline point.

Strategies and losses enter the space as short string labels (``"smote"``,
``"focal(alpha=0.25,gamma=2)"``); their parameters are looked up from the config
by label, so the space stays flat, readable in Tune's output, and the baseline
can be given to Tune as a plain point to evaluate first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from longtail.config import Config, LossVariant
from longtail.errors import ConfigError
from longtail.losses import make_loss
from longtail.resampling import STRATEGIES, check_params

__all__ = [
    "BASELINE_LOSS",
    "BASELINE_STRATEGY",
    "TrialSpec",
    "baseline_point",
    "is_baseline",
    "loss_label",
    "loss_variants",
    "param_space",
    "strategy_names",
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


def baseline_point(cfg: Config) -> dict[str, Any]:
    """The baseline trial: no resampling, plain BCE, the ``train`` learning rate and size."""
    return {
        "strategy": BASELINE_STRATEGY,
        "loss": BASELINE_LOSS,
        "learning_rate": cfg.train.learning_rate,
        "embedding_dim": cfg.train.embedding_dim,
    }


def is_baseline(point: Mapping[str, Any], cfg: Config) -> bool:
    """Whether a trial's config is the baseline point."""
    return {k: point.get(k) for k in baseline_point(cfg)} == baseline_point(cfg)


def param_space(cfg: Config) -> dict[str, Any]:
    """The Ray Tune ``param_space``: choices, and a log-uniform learning rate."""
    from ray import tune

    tc = cfg.tune
    lr = (
        tune.loguniform(tc.learning_rate_min, tc.learning_rate_max)
        if tc.learning_rate_max > tc.learning_rate_min
        else tc.learning_rate_min
    )
    return {
        "strategy": tune.choice(strategy_names(cfg)),
        "loss": tune.choice(list(loss_variants(cfg))),
        "learning_rate": lr,
        "embedding_dim": tune.choice(list(dict.fromkeys(tc.embedding_dims))),
    }


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
    )
