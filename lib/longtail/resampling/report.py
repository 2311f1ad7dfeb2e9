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

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from pydantic import Field, model_serializer, model_validator

from longtail.artifacts import Artifact, SamplingCorrection, read_artifact
from longtail.errors import StageError
from longtail.prior import FALLBACK, row_offsets

__all__ = ["USER_HASH_TOLERANCE", "ClassCounts", "SamplingReport"]

OVERALL = FALLBACK
#: Largest gap (logits) between a user-hash bucket's offset and the overall one.
USER_HASH_TOLERANCE = 0.25


class ClassCounts(Artifact):
    """Rows per class before and after resampling, for one stratum or overall.

    Its JSON form (:meth:`to_dict`) adds the rates, keyed by ``"0"``/``"1"``; they are
    derived, so reading it back ignores them.
    """

    before: dict[int, int]
    after: dict[int, int]

    @model_validator(mode="before")
    @classmethod
    def _without_rates(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping) and "rate" in raw:
            return {k: v for k, v in raw.items() if k != "rate"}
        return raw

    @model_serializer
    def _json_form(self) -> dict[str, dict[str, Any]]:
        return self.to_dict()

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


class SamplingReport(Artifact):
    """What resampling did to the class counts, and how to undo it in probabilities.

    The artifact ``sampling_report.json`` (``Layout.sampling_report(strategy)``),
    written by :meth:`write` and read by :meth:`load` like every artifact of
    :mod:`longtail.artifacts`. The file nests the correction (``correction.by``,
    ``correction.log_odds_offset``) and lists the strata with their names; the
    attributes below are the flat form, converted on the way in and out.

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
    synthetic: dict[int, int] = Field(default_factory=lambda: {0: 0, 1: 0})

    @model_validator(mode="before")
    @classmethod
    def _from_json_form(cls, raw: Any) -> Any:
        """The file's form (nested correction, strata as a list) to the attributes."""
        if not isinstance(raw, Mapping) or "correction" not in raw:
            return raw
        out = {k: v for k, v in raw.items() if k not in ("correction", "strata")}
        correction = raw["correction"]
        if isinstance(correction, Mapping):
            out.update(
                {
                    name: correction[key]
                    for key, name in (
                        ("by", "correction_by"),
                        ("log_odds_offset", "log_odds_offset_by"),
                    )
                    if key in correction
                }
            )
        strata = raw.get("strata")
        if isinstance(strata, list) and all(
            isinstance(s, Mapping) and "stratum" in s for s in strata
        ):
            out["strata"] = {
                str(s["stratum"]): {k: v for k, v in s.items() if k != "stratum"} for s in strata
            }
        elif "strata" in raw:
            out["strata"] = strata  # not a list of named strata: validation says so
        # A report from before synthetic rows were counted read back as no count.
        out.setdefault("synthetic", {})
        return out

    @model_serializer
    def _json_form(self) -> dict[str, Any]:
        return self.to_dict()

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
        """Return the JSON form read by training and scoring (what :meth:`write` writes)."""
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

    @classmethod
    def load(cls, path: Path) -> SamplingReport:
        """Read a report written by :meth:`write` (via :func:`~longtail.artifacts.read_artifact`).

        Raises
        ------
        StageError
            The file is missing, not JSON, or not a sampling report (the message
            names the missing keys).
        """
        try:
            return read_artifact(cls, path)
        except StageError as exc:
            msg = f"not a sampling report: {exc}"
            raise StageError(msg) from exc
