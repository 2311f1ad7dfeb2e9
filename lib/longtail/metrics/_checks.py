"""Column checks shared by the metric functions: one clear error per wrong input."""

from __future__ import annotations

import numpy as np
import polars as pl

from longtail.errors import StageError

__all__ = ["binary_arrays", "require"]


def require(
    frame: pl.DataFrame, *, numeric: tuple[str, ...] = (), other: tuple[str, ...] = ()
) -> None:
    """Raise :class:`StageError` when a column is missing or a numeric one is not numeric."""
    missing = [c for c in (*numeric, *other) if c not in frame.columns]
    if missing:
        msg = f"metric input lacks column(s) {missing}; has {frame.columns}"
        raise StageError(msg)
    for name in numeric:
        dtype = frame.schema[name]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            msg = f"metric input column {name!r} must be numeric. Got dtype {dtype} instead."
            raise StageError(msg)


def binary_arrays(frame: pl.DataFrame, *, label: str, score: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(labels, scores)`` as float64 arrays: labels 0/1, scores finite, nothing null."""
    require(frame, numeric=(label, score))
    if frame.select(pl.col(label).is_null().any() | pl.col(score).is_null().any()).item():
        msg = f"metric input has nulls in {label!r} or {score!r}"
        raise StageError(msg)
    y = frame[label].cast(pl.Float64).to_numpy()
    s = frame[score].cast(pl.Float64).to_numpy()
    if y.size and not np.isin(y, (0.0, 1.0)).all():
        msg = f"metric input column {label!r} must hold only 0 and 1"
        raise StageError(msg)
    if not np.isfinite(s).all():
        msg = f"metric input column {score!r} holds NaN or infinite values"
        raise StageError(msg)
    return y, s
