"""The sampling report: class counts before and after, sampling rates, and the prior correction.

Derivation of the correction. Resampling keeps (approximately, for synthetic rows)
the class-conditional feature distribution ``p(x | y)`` and scales the class
counts by the sampling rates ``r_c = after_c / before_c``. By Bayes, for rows of
one stratum::

    odds_resampled(x) = odds_true(x) * r_1 / r_0

so ``logit(p_true) = logit(p_resampled) - offset`` with ``offset = log(r_1 / r_0)``,
i.e. ``p_true = p / (p + (1 - p) * exp(offset))``. The offset is written per
stratum value when the stratum is a column the scored rows carry (the
popularity bucket for ``label_bucket``, the item category for ``category``).
The ``user_hash`` stratum is a hash the scored rows do not carry, so it gets
one offset for all rows (``"*"``); resampling refuses it when its per-bucket
offsets differ by more than :data:`USER_HASH_TOLERANCE` logits from that one,
since one offset would then miscalibrate some users.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from longtail.artifacts import SamplingCorrection
from longtail.errors import StageError
from longtail.io import write_json
from longtail.prior import FALLBACK, row_offsets

__all__ = ["USER_HASH_TOLERANCE", "ClassCounts", "SamplingReport"]

OVERALL = FALLBACK
#: Largest gap (logits) between a user-hash bucket's offset and the overall one.
USER_HASH_TOLERANCE = 0.25


@dataclass(frozen=True)
class ClassCounts:
    """Rows per class before and after resampling, for one stratum or overall."""

    before: dict[int, int]
    after: dict[int, int]

    def rate(self, cls: int) -> float | None:
        """Return ``after / before`` for class ``cls``; ``None`` when there was no such row."""
        n = self.before.get(cls, 0)
        return None if n == 0 else self.after.get(cls, 0) / n

    def offset(self) -> float | None:
        """Return ``log(rate_1 / rate_0)``, or ``None`` when a rate is missing or zero."""
        r0, r1 = self.rate(0), self.rate(1)
        if not r0 or not r1:
            return None
        return math.log(r1 / r0)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the JSON form: ``before``, ``after`` and ``rate`` keyed by ``"0"``/``"1"``."""
        return {
            "before": {str(c): self.before.get(c, 0) for c in (0, 1)},
            "after": {str(c): self.after.get(c, 0) for c in (0, 1)},
            "rate": {str(c): self.rate(c) for c in (0, 1)},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ClassCounts:
        """Inverse of :meth:`to_dict`."""
        return cls(
            before={int(k): int(v) for k, v in raw["before"].items()},
            after={int(k): int(v) for k, v in raw["after"].items()},
        )


@dataclass(frozen=True)
class SamplingReport:
    """What resampling did to the class counts, and how to undo it in probabilities.

    Attributes
    ----------
    strategy, stratum, params, seed
        As configured (``seed`` is the base seed actually used).
    overall
        Class counts over all rows.
    strata
        Class counts per stratum value, sorted by value.
    correction_by
        ``"item_popularity_bucket"`` or ``"item_category_id"`` when offsets are
        per stratum value, else ``None``.
    log_odds_offset_by
        Stratum value -> offset, or ``{"*": offset}``.
    synthetic
        Rows created by oversampling, per class (they are not marked in the data).
    """

    strategy: str
    stratum: str
    params: dict[str, Any]
    seed: int
    overall: ClassCounts
    strata: dict[str, ClassCounts]
    correction_by: str | None
    log_odds_offset_by: dict[str, float]
    synthetic: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 0})

    @classmethod
    def build(
        cls,
        *,
        strategy: str,
        stratum: str,
        params: Mapping[str, Any],
        seed: int,
        strata: Mapping[str, ClassCounts],
        correction_by: str | None,
        synthetic: Mapping[int, int] | None = None,
    ) -> SamplingReport:
        """Build a report from per-stratum counts; overall counts and offsets are derived.

        Raises
        ------
        StageError
            The overall rate of a class is zero or undefined, so no correction
            exists; or the stratum is ``user_hash`` and its buckets' offsets
            differ from the overall one by more than :data:`USER_HASH_TOLERANCE`.
        """
        overall = ClassCounts(
            before={c: sum(s.before.get(c, 0) for s in strata.values()) for c in (0, 1)},
            after={c: sum(s.after.get(c, 0) for s in strata.values()) for c in (0, 1)},
        )
        base = overall.offset()
        if base is None:
            msg = (
                "no prior correction exists: a class has no rows before or after resampling. "
                f"Got overall counts {overall.to_dict()!r} instead."
            )
            raise StageError(msg)
        offsets: dict[str, float] = {}
        if stratum == "user_hash":
            gaps = [abs(v - base) for s in strata.values() if (v := s.offset()) is not None]
            if gaps and max(gaps) > USER_HASH_TOLERANCE:
                msg = (
                    "resampling.stratum 'user_hash' gets one prior offset for all rows (scored "
                    "rows carry no user-hash column), but its buckets' offsets differ from it by "
                    f"up to {max(gaps):.2f} logits (> {USER_HASH_TOLERANCE}); use stratum "
                    "'label_bucket' or 'category', which get per-stratum offsets"
                )
                raise StageError(msg)
        if correction_by is None:
            offsets[OVERALL] = base
        else:
            for name, counts in strata.items():
                value = counts.offset()
                if value is not None:
                    offsets[name] = value
        return cls(
            strategy=strategy,
            stratum=stratum,
            params=dict(params),
            seed=seed,
            overall=overall,
            strata=dict(sorted(strata.items())),
            correction_by=correction_by,
            log_odds_offset_by=offsets,
            synthetic={c: int((synthetic or {}).get(c, 0)) for c in (0, 1)},
        )

    @property
    def correction(self) -> SamplingCorrection:
        """The prior correction: the column that picks the offset, and the offsets."""
        return SamplingCorrection(by=self.correction_by, log_odds_offset=self.log_odds_offset_by)

    @property
    def overall_offset(self) -> float:
        """``log(rate_1 / rate_0)`` over all rows: the fallback for unknown buckets."""
        if OVERALL in self.log_odds_offset_by:
            return self.log_odds_offset_by[OVERALL]
        value = self.overall.offset()
        if value is None:
            msg = f"report has no overall correction. Got {self.overall.to_dict()!r} instead."
            raise StageError(msg)
        return value

    def log_odds_offset(self, frame: pl.DataFrame) -> NDArray[np.float64]:
        """Return one offset per row of ``frame``: by its bucket, else the overall one.

        Raises
        ------
        StageError
            The report corrects by bucket and ``frame`` lacks the bucket column.
        """
        base = self.overall_offset
        if self.correction_by is not None and self.correction_by not in frame.columns:
            msg = (
                f"the correction is by {self.correction_by!r}, which the frame lacks. "
                f"Got columns {frame.columns!r} instead."
            )
            raise StageError(msg)
        groups = None if self.correction_by is None else frame.get_column(self.correction_by)
        return row_offsets(groups, self.log_odds_offset_by, fallback=base, n=frame.height)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form read by training and scoring."""
        return {
            "strategy": self.strategy,
            "stratum": self.stratum,
            "params": self.params,
            "seed": self.seed,
            "overall": self.overall.to_dict(),
            "strata": [{"stratum": k, **v.to_dict()} for k, v in self.strata.items()],
            "correction": {"by": self.correction_by, "log_odds_offset": self.log_odds_offset_by},
            "synthetic": {str(c): n for c, n in self.synthetic.items()},
        }

    def to_json(self, path: Path) -> Path:
        """Write the report as JSON (atomically) and return ``path``."""
        return write_json(self.to_dict(), path)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SamplingReport:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                strategy=str(raw["strategy"]),
                stratum=str(raw["stratum"]),
                params=dict(raw["params"]),
                seed=int(raw["seed"]),
                overall=ClassCounts.from_dict(raw["overall"]),
                strata={str(s["stratum"]): ClassCounts.from_dict(s) for s in raw["strata"]},
                correction_by=raw["correction"]["by"],
                log_odds_offset_by={
                    str(k): float(v) for k, v in raw["correction"]["log_odds_offset"].items()
                },
                synthetic={int(k): int(v) for k, v in raw.get("synthetic", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"not a sampling report: {exc!r}. Got keys {sorted(raw)!r} instead."
            raise StageError(msg) from exc

    @classmethod
    def load(cls, path: Path) -> SamplingReport:
        """Read a report written by :meth:`to_json`.

        Raises
        ------
        StageError
            The file is missing, not JSON, or lacks a key.
        """
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            msg = f"cannot read sampling report {path}: {exc}"
            raise StageError(msg) from exc
        return cls.from_dict(raw)
