"""Binary losses for rare positives: plain, weighted, focal and class-balanced BCE.

Every loss takes raw logits and 0/1 labels of shape ``B`` and returns the mean
over the batch. The model returns logits; the loss lives here, outside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from longtail.errors import ConfigError
from longtail.schema import LOSSES

__all__ = [
    "LOSSES",
    "LossFn",
    "bce",
    "class_balanced",
    "class_balanced_weights",
    "default_beta",
    "focal",
    "logit_shift",
    "make_loss",
    "weight_ratio",
    "weighted_bce",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy on logits.

    Parameters
    ----------
    logits
        Raw scores, shape ``B``.
    labels
        0/1 targets, shape ``B`` (any float or int dtype).

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def weighted_bce(logits: torch.Tensor, labels: torch.Tensor, *, pos_weight: float) -> torch.Tensor:
    """Binary cross-entropy with positives weighted by ``pos_weight``.

    ``loss = -(w * y * log p + (1 - y) * log(1 - p))``, averaged over the batch.

    Raises
    ------
    ValueError
        ``pos_weight`` is not positive.
    """
    if not pos_weight > 0:
        msg = f"weighted_bce: pos_weight must be > 0. Got {pos_weight!r} instead."
        raise ValueError(msg)
    weight = torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=weight)


def focal(
    logits: torch.Tensor, labels: torch.Tensor, *, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): ``-alpha_t * (1 - p_t)**gamma * log(p_t)``, averaged.

    ``alpha`` weighs positives and ``1 - alpha`` negatives; ``gamma = 0`` and
    ``alpha = 0.5`` gives half the BCE.

    Raises
    ------
    ValueError
        ``alpha`` is outside [0, 1] or ``gamma`` is negative.
    """
    if not 0.0 <= alpha <= 1.0:
        msg = f"focal: alpha must be in [0, 1]. Got {alpha!r} instead."
        raise ValueError(msg)
    if gamma < 0:
        msg = f"focal: gamma must be >= 0. Got {gamma!r} instead."
        raise ValueError(msg)
    y = labels.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    p_t = torch.exp(-ce)
    alpha_t = alpha * y + (1.0 - alpha) * (1.0 - y)
    return (alpha_t * (1.0 - p_t).pow(gamma) * ce).mean()


def default_beta(*, n_negative: int) -> float:
    """``1 - 1 / n_negative``: the class-balanced beta that tracks the class counts.

    Cui et al.'s effective number ``(1 - beta**n) / (1 - beta)`` saturates at
    ``1 / (1 - beta)`` rows; with ``beta = 1 - 1/n_negative`` the majority class
    saturates near its own size, so the positive-to-negative weight ratio is
    about ``0.63 * n_negative / n_positive``. A fixed 0.999 saturates at 1,000
    rows and gives ~1.03x on a 90,000-row train split: plain BCE.
    """
    return 1.0 - 1.0 / max(n_negative, 2)


def class_balanced_weights(*, n_negative: int, n_positive: int, beta: float) -> tuple[float, float]:
    """Class weights from the effective number of samples (Cui et al. 2019).

    ``w_c = (1 - beta) / (1 - beta**n_c)``, scaled so the two weights sum to 2.

    Returns
    -------
    tuple of float
        ``(w_negative, w_positive)``.

    Raises
    ------
    ValueError
        ``beta`` is outside [0, 1) or a count is not positive.
    """
    if not 0.0 <= beta < 1.0:
        msg = f"class_balanced: beta must be in [0, 1). Got {beta!r} instead."
        raise ValueError(msg)
    if n_negative < 1 or n_positive < 1:
        msg = (
            "class_balanced: both classes need at least one row. "
            f"Got n_negative={n_negative!r}, n_positive={n_positive!r} instead."
        )
        raise ValueError(msg)
    raw = [(1.0 - beta) / (1.0 - beta**n) if beta > 0 else 1.0 for n in (n_negative, n_positive)]
    total = sum(raw)
    return 2.0 * raw[0] / total, 2.0 * raw[1] / total


def class_balanced(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_negative: int,
    n_positive: int,
    beta: float | None = None,
) -> torch.Tensor:
    """BCE with each row weighted by its class's effective-number weight, averaged.

    See :func:`class_balanced_weights`; ``beta`` None is :func:`default_beta`.
    """
    if beta is None:
        beta = default_beta(n_negative=n_negative)
    w_neg, w_pos = class_balanced_weights(n_negative=n_negative, n_positive=n_positive, beta=beta)
    y = labels.to(logits.dtype)
    weights = w_pos * y + w_neg * (1.0 - y)
    return F.binary_cross_entropy_with_logits(logits, y, weight=weights)


_ALLOWED: dict[str, frozenset[str]] = {
    "bce": frozenset(),
    "weighted_bce": frozenset({"pos_weight"}),
    "focal": frozenset({"alpha", "gamma"}),
    "class_balanced": frozenset({"beta"}),
}


def _check(name: str, params: Mapping[str, float]) -> None:
    if name not in _ALLOWED:
        msg = f"unknown loss {name!r}; expected one of {LOSSES}."
        raise ConfigError(msg)
    unknown = sorted(set(params) - _ALLOWED[name])
    if unknown:
        msg = (
            f"train.loss_params: {unknown} not accepted by loss {name!r} "
            f"(accepts {sorted(_ALLOWED[name])})."
        )
        raise ConfigError(msg)


def make_loss(
    name: str, params: Mapping[str, float], *, n_negative: int, n_positive: int
) -> LossFn:
    """Return the configured loss as ``fn(logits, labels) -> scalar``.

    Parameters
    ----------
    name
        One of :data:`LOSSES`.
    params
        ``train.loss_params``. ``weighted_bce`` defaults ``pos_weight`` to
        ``n_negative / n_positive`` of the training rows; ``class_balanced``
        defaults ``beta`` to :func:`default_beta` (``1 - 1/n_negative``);
        ``focal`` to ``alpha=0.25, gamma=2``.
    n_negative, n_positive
        Class counts of the (possibly resampled) training rows.

    Raises
    ------
    ConfigError
        Unknown loss or parameter.
    """
    _check(name, params)
    if name == "bce":
        return bce
    if name == "weighted_bce":
        pos_weight = float(params.get("pos_weight", n_negative / max(n_positive, 1)))
        return lambda z, y: weighted_bce(z, y, pos_weight=pos_weight)
    if name == "focal":
        alpha = float(params.get("alpha", 0.25))
        gamma = float(params.get("gamma", 2.0))
        return lambda z, y: focal(z, y, alpha=alpha, gamma=gamma)
    beta = float(params.get("beta", default_beta(n_negative=n_negative)))
    return lambda z, y: class_balanced(
        z, y, n_negative=n_negative, n_positive=n_positive, beta=beta
    )


def logit_shift(
    name: str, params: Mapping[str, float], *, n_negative: int, n_positive: int
) -> float:
    """Return the log-odds shift a loss puts into the logits at its optimum.

    A BCE whose positives weigh ``w_pos`` and negatives ``w_neg`` is minimized by
    ``logit = logit_true + log(w_pos / w_neg)``; calibration subtracts this shift
    before temperature or isotonic scaling. Focal loss has no closed-form shift
    (0 is returned and the post-hoc scaling absorbs its distortion).
    """
    _check(name, params)
    if name == "weighted_bce":
        return math.log(float(params.get("pos_weight", n_negative / max(n_positive, 1))))
    if name == "class_balanced":
        w_neg, w_pos = class_balanced_weights(
            n_negative=n_negative,
            n_positive=n_positive,
            beta=float(params.get("beta", default_beta(n_negative=n_negative))),
        )
        return math.log(w_pos / w_neg)
    return 0.0


def weight_ratio(
    name: str, params: Mapping[str, float], *, n_negative: int, n_positive: int
) -> float | None:
    """The effective positive-to-negative weight ratio of a loss, or None for focal.

    1.0 for plain BCE; for weighted and class-balanced BCE ``exp`` of
    :func:`logit_shift`. Focal loss weighs rows by their difficulty, not their
    class alone, so it has no single ratio.
    """
    if name == "focal":
        _check(name, params)
        return None
    return math.exp(logit_shift(name, params, n_negative=n_negative, n_positive=n_positive))
