"""Calibration: undo the sampling prior and the loss's shift, then a post-hoc scaling.

``p = g(logit - sampling_offset(bucket) - loss_shift)`` where ``g`` is
``sigmoid(z / T)`` (temperature), ``sigmoid(a z + b)`` (Platt: temperature plus
an intercept, which also repairs an overall bias that temperature alone cannot,
e.g. after a focal loss or a short training), or a monotone step function
(isotonic), each fitted on the untouched validation set. Everything is plain
numbers, saved as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from longtail.artifacts import SamplingCorrection
from longtail.errors import StageError
from longtail.prior import FALLBACK, Groups, row_offsets, with_fallback

__all__ = ["Calibration", "fit_calibration", "offsets_from_report", "sigmoid"]

Method = Literal["none", "temperature", "platt", "isotonic"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function.

    Kept in this tanh form rather than :func:`scipy.special.expit`: expit differs in
    the last bit for about half of all inputs, which would change every served
    probability (the demo's lists are pinned bit-identical).
    """
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64))))


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration.

    Attributes
    ----------
    offset_by
        Column whose value picks the sampling offset (the popularity bucket or
        the item category: the resampling stratum), or None for one offset for
        every row.
    offsets
        Value -> log-odds offset; the key ``"*"`` is the fallback for other values.
    loss_shift
        Log-odds shift the training loss puts into the logits (weighted losses).
    method, temperature, isotonic_x, isotonic_y
        The post-hoc scaling of the corrected logit.
    """

    offset_by: str | None = None
    offsets: dict[str, float] = field(default_factory=lambda: {"*": 0.0})
    loss_shift: float = 0.0
    method: Method = "none"
    temperature: float = 1.0
    platt_a: float = 1.0
    platt_b: float = 0.0
    isotonic_x: tuple[float, ...] = ()
    isotonic_y: tuple[float, ...] = ()

    def row_offsets(self, groups: Groups, n: int) -> np.ndarray:
        """Per-row sampling offset, from the rows' ``offset_by`` values (strings or None)."""
        fallback = self.offsets.get(FALLBACK, 0.0)
        return row_offsets(
            None if self.offset_by is None else groups, self.offsets, fallback=fallback, n=n
        )

    def corrected_logits(self, logits: np.ndarray, groups: Groups) -> np.ndarray:
        """Logits with the sampling prior and the loss shift removed."""
        z = np.asarray(logits, dtype=np.float64)
        out: np.ndarray = z - self.row_offsets(groups, z.size) - self.loss_shift
        return out

    def apply(self, logits: np.ndarray, groups: Groups = None) -> np.ndarray:
        """Return calibrated probabilities for raw model logits.

        Parameters
        ----------
        logits
            Raw logits, shape ``B``.
        groups
            The rows' values of ``offset_by`` (e.g. popularity buckets), a numpy
            array or a Polars Series (faster: no Python strings); None uses the
            fallback offset for every row.
        """
        z = self.corrected_logits(logits, groups)
        if self.method == "temperature":
            return sigmoid(z / self.temperature)
        if self.method == "platt":
            return sigmoid(self.platt_a * z + self.platt_b)
        if self.method == "isotonic":
            xs, ys = np.asarray(self.isotonic_x), np.asarray(self.isotonic_y)
            return np.asarray(np.interp(sigmoid(z), xs, ys), dtype=np.float64)
        return sigmoid(z)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (see :meth:`from_json`)."""
        return {
            "offset_by": self.offset_by,
            "offsets": dict(self.offsets),
            "loss_shift": self.loss_shift,
            "method": self.method,
            "temperature": self.temperature,
            "platt_a": self.platt_a,
            "platt_b": self.platt_b,
            "isotonic_x": list(self.isotonic_x),
            "isotonic_y": list(self.isotonic_y),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Calibration:
        """Rebuild from :meth:`to_json` output."""
        return cls(
            offset_by=raw["offset_by"],
            offsets={str(k): float(v) for k, v in raw["offsets"].items()},
            loss_shift=float(raw["loss_shift"]),
            method=raw["method"],
            temperature=float(raw["temperature"]),
            platt_a=float(raw.get("platt_a", 1.0)),
            platt_b=float(raw.get("platt_b", 0.0)),
            isotonic_x=tuple(float(x) for x in raw["isotonic_x"]),
            isotonic_y=tuple(float(y) for y in raw["isotonic_y"]),
        )


def offsets_from_report(
    report: SamplingCorrection | Mapping[str, Any] | None,
) -> tuple[str | None, dict[str, float]]:
    """The calibration's ``(offset_by, offsets)`` from a sampling correction.

    ``report`` is the typed correction, or a sampling report's JSON form (its
    ``correction`` part is read). Offsets by stratum without a ``"*"`` entry
    get the mean of the others as the fallback for rows of an unknown value
    (:func:`longtail.prior.with_fallback`).

    Raises
    ------
    StageError
        The JSON lacks ``correction.log_odds_offset`` or it is not numbers.
    """
    if report is None:
        return None, {FALLBACK: 0.0}
    correction = (
        report if isinstance(report, SamplingCorrection) else SamplingCorrection.from_report(report)
    )
    return correction.by, with_fallback(correction.log_odds_offset)


def _nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    t = z / temperature
    # log(1 + exp(t)) - y * t, stable.
    return float(np.mean(np.logaddexp(0.0, t) - y * t))


def _fit_platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Logistic regression of y on z (slope and intercept) minimizing log loss.

    Bounded (slope in [1e-3, 100], intercept in [-50, 50]) and started at the
    identity, so nearly constant logits cannot send the fit off to infinity.
    """

    def nll(ab: np.ndarray) -> float:
        t = ab[0] * z + ab[1]
        return float(np.mean(np.logaddexp(0.0, t) - y * t))

    def grad(ab: np.ndarray) -> np.ndarray:
        r = sigmoid(ab[0] * z + ab[1]) - y
        return np.array([np.mean(r * z), np.mean(r)])

    from scipy.optimize import minimize  # fitting only: scoring workers skip the import

    res = minimize(
        nll, np.array([1.0, 0.0]), jac=grad, method="L-BFGS-B",
        bounds=[(1e-3, 100.0), (-50.0, 50.0)],
    )  # fmt: skip
    a, b = float(res.x[0]), float(res.x[1])
    if not (np.isfinite(a) and np.isfinite(b)) or nll(res.x) > nll(np.array([1.0, 0.0])):
        return 1.0, 0.0
    return a, b


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    method: Method,
    groups: np.ndarray | None = None,
    offset_by: str | None = None,
    offsets: Mapping[str, float] | None = None,
    loss_shift: float = 0.0,
) -> Calibration:
    """Fit the post-hoc scaling on untouched validation rows after the prior correction.

    Parameters
    ----------
    logits, labels
        Raw model logits and 0/1 labels of the validation rows.
    method
        "none", "temperature" (one ``T`` minimizing log loss, searched on
        ``log T`` in [-4, 4]), "platt" (slope and intercept minimizing log loss)
        or "isotonic" (scikit-learn, clipped to [0, 1]).
    groups, offset_by, offsets
        The rows' bucket values and the sampling report's offsets.
    loss_shift
        See :func:`longtail.losses.logit_shift`.

    Raises
    ------
    StageError
        Shapes differ, or the validation rows lack a class for a fitted method.
    """
    z_raw = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if z_raw.shape != y.shape:
        msg = f"calibration: logits {z_raw.shape} and labels {y.shape} differ in shape"
        raise StageError(msg)
    base = Calibration(
        offset_by=offset_by,
        offsets=dict(offsets) if offsets else {"*": 0.0},
        loss_shift=loss_shift,
        method="none",
    )
    if method == "none":
        return base
    if y.size == 0 or y.min() == y.max():
        msg = f"calibration {method!r} needs both classes in the validation rows"
        raise StageError(msg)
    # Imported here, not at the top: a scoring worker only applies a calibration,
    # and scipy.optimize plus scikit-learn cost it seconds of start-up.
    from scipy.optimize import minimize_scalar
    from sklearn.isotonic import IsotonicRegression

    z = base.corrected_logits(z_raw, groups)
    if method == "temperature":
        res = minimize_scalar(
            lambda log_t: _nll(z, y, math.exp(log_t)), bounds=(-4.0, 4.0), method="bounded"
        )
        return Calibration(
            **{**base.__dict__, "method": "temperature", "temperature": math.exp(res.x)}
        )
    if method == "platt":
        a, b = _fit_platt(z, y)
        return Calibration(**{**base.__dict__, "method": "platt", "platt_a": a, "platt_b": b})
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(sigmoid(z), y)
    return Calibration(
        **{
            **base.__dict__,
            "method": "isotonic",
            "isotonic_x": tuple(float(v) for v in iso.X_thresholds_),
            "isotonic_y": tuple(float(v) for v in iso.y_thresholds_),
        }
    )
