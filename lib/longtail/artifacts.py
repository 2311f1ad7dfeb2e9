"""The typed hand-offs between stages: what one stage writes as JSON and another reads.

Each model here is the schema of one artifact file; :class:`longtail.paths.Layout`
says where each lives. Writers build the model and dump it; readers load it back
through the model, so a missing or misspelt key fails where the file is read, with
the file's name, not as a ``KeyError`` deep in the stage that uses it.

===========================  ===========================================  ======================
artifact                     written by                                   path (``Layout``)
===========================  ===========================================  ======================
``SamplingReport`` [1]_      resampling (``sampling_report.json``)        ``sampling_report(s)``
:class:`SamplingCorrection`  resampling (the report's ``correction``)     ``sampling_report(s)``
:class:`ModelManifest`       ``train.finish`` (fit and every tune trial)  ``model_manifest(v)``
:class:`CurrentModel`        ``models.save_model``                        ``current_model``
:class:`LastTrained`         the daily chain's train step                 ``last_trained``
:class:`TunedBest`           ``tune.run_tune``                            ``tune_best``
:class:`BacktestMetrics`     ``backtest.run_backtest``                    ``backtest_metrics(d)``
:class:`DatasetManifest`     ``storage.DataStore`` (object stores)        ``DATASET_MANIFEST``
===========================  ===========================================  ======================

.. [1] :class:`longtail.resampling.SamplingReport`.

The sampling report is an :class:`Artifact` defined beside the derivation of its
correction (``resampling/report.py``), so its counts and offsets read with the maths
that makes them; training and calibration read its :class:`SamplingCorrection` part.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from longtail.errors import StageError
from longtail.io import write_json

__all__ = [
    "Artifact",
    "BacktestMetrics",
    "CurrentModel",
    "DatasetManifest",
    "Interval",
    "LastTrained",
    "ModelManifest",
    "SamplingCorrection",
    "TuneOrigin",
    "TunedBest",
    "VsBaseline",
    "read_artifact",
]


class Artifact(BaseModel):
    """One artifact file's schema: frozen, no unknown keys, written and read as JSON.

    Subclass it for a file one stage writes and another reads; its :meth:`load` goes
    through :func:`read_artifact`, so every artifact fails the same way when broken.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    def write(self, path: Path) -> Path:
        """Write the JSON form atomically (key-sorted, like every JSON of the project).

        Dumped in Python mode, so a NaN metric stays NaN (JSON mode would write null)
        and dates are written as ISO strings by :func:`longtail.io.write_json`.
        """
        return write_json(self.model_dump(by_alias=True), path)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read and check one artifact file.

        Raises
        ------
        StageError
            The file is missing, not JSON, or not this artifact (the message names the keys).
        """
        return read_artifact(cls, path)


A = TypeVar("A", bound=Artifact)


def read_artifact(model: type[A], path: Path) -> A:
    """Load ``path`` as ``model`` (see :meth:`Artifact.load`)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise StageError(msg) from exc
    if not isinstance(raw, dict):
        msg = f"{path} must hold a JSON object. Got {raw!r} instead."
        raise StageError(msg)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        missing = [".".join(map(str, e["loc"])) for e in exc.errors() if e["type"] == "missing"]
        detail = f"lacks key(s) {missing}" if missing else f"is not a {model.__name__}: {exc}"
        msg = f"{path} {detail}. Got keys {sorted(raw)!r} instead."
        raise StageError(msg) from exc


# --------------------------------------------------------------------------- object stores
class DatasetManifest(Artifact):
    """The parts of a dataset folder in an object store, committed by one PUT of this file.

    ``run`` is the ``run-<id>`` prefix the parts were written under, ``files`` their
    names inside it (sorted). Readers read only these; parts of a write in progress
    (or of a crashed one) sit under another run prefix and are never listed.
    """

    run: str
    files: list[str]
    rows: int | None = None
    #: What the folder's own ``_manifest.json`` says where a local folder has one (a
    #: recommendations partition's counts and model version): kept here, since an
    #: object-store folder's ``_manifest.json`` is this commit record.
    meta: dict[str, Any] | None = None


# --------------------------------------------------------------------------- resampling
class SamplingCorrection(Artifact):
    """The prior correction a sampling report carries (its ``correction`` part).

    ``by`` is the column whose value picks the offset (the popularity bucket or
    the item category), or None for one offset for every row (key ``"*"``).
    ``log_odds_offset`` maps a stratum value to ``log(rate_1 / rate_0)``.
    """

    by: str | None = None
    log_odds_offset: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> SamplingCorrection:
        """The correction of a sampling report's JSON form.

        Raises
        ------
        StageError
            The report lacks ``correction.log_odds_offset`` or it is not numbers.
        """
        try:
            correction = report["correction"]
            by = correction.get("by")
            return cls(by=str(by) if by else None, log_odds_offset=correction["log_odds_offset"])
        except (KeyError, TypeError, AttributeError, ValidationError) as exc:
            msg = f"sampling report lacks a valid correction.log_odds_offset: {exc!r}"
            raise StageError(msg) from exc


# --------------------------------------------------------------------------- models
class TuneOrigin(Artifact):
    """Which tune trial (and epoch) a model comes from."""

    run_id: str
    trial_id: str
    epoch: int
    objective: str


class ModelManifest(Artifact):
    """``models/<version>/manifest.json``: how to rebuild a saved model and what it was fitted on.

    The first group of fields is what :func:`longtail.models.load_model` needs;
    the rest describes the run. Both ``train.fit`` and a tune trial write it
    through :func:`longtail.train.finish.finish_model`, so the two agree on the
    keys; fields a trial does not compute (test metrics, resources) are None.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", protected_namespaces=(), populate_by_name=True
    )

    format_version: int
    version: str
    weights: str
    # "model_config" in the file; the name is pydantic's own attribute.
    architecture: dict[str, Any] = Field(alias="model_config")
    features: dict[str, Any]
    calibration: dict[str, Any]

    created_at: str = ""
    feature_service: str = ""
    strategy: str = "none"
    strategy_requested: str | None = None
    strategy_params: dict[str, Any] = Field(default_factory=dict)
    sampling_report: dict[str, Any] | None = None
    loss: str = "bce"
    loss_params: dict[str, float] = Field(default_factory=dict)
    train_config: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    class_counts: dict[str, int] | None = None
    loss_weight_ratio: float | None = None
    data_window: dict[str, dict[str, Any]] | None = None
    metrics: list[dict[str, Any]] | None = None
    ranking: list[dict[str, Any]] | None = None
    history: list[dict[str, Any]] | None = None
    best_epoch: int | None = None
    resources: dict[str, Any] | None = None
    tune: TuneOrigin | None = None


class CurrentModel(Artifact):
    """``models/current.json``: the model version scoring uses (a folder beside the pointer)."""

    version: str
    path: str


class LastTrained(Artifact):
    """``models/last_trained.json``: the run date and version of the daily chain's last training."""

    date: dt.date
    version: str


# --------------------------------------------------------------------------- tune
class Interval(Artifact):
    """An estimate with its interval."""

    estimate: float | None
    low: float | None
    high: float | None


class VsBaseline(Artifact):
    """The winner minus the baseline on test: a paired interval with training noise in it."""

    estimate: float
    low: float
    high: float
    level: float
    beyond_noise: bool
    se_test: float
    se_seed: float
    seeds: list[int]


class TunedBest(Artifact):
    """``tune/best.json``: the winning configuration of the latest tune run, for the daily job."""

    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    strategy: str
    strategy_params: dict[str, Any]
    loss: str
    loss_params: dict[str, float]
    learning_rate: float
    embedding_dim: int
    objective: str
    objective_value: float
    run_id: str
    trial_id: str | None = None
    label: str | None = None
    created_at: str | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    seeds: int | None = None
    hyperparameters: str | None = None
    heldout_relative_ece: float | None = None
    heldout_log_loss_skill: float | None = None
    heldout_brier_skill: float | None = None
    is_baseline: bool | None = None
    test_objective: Interval | None = None
    vs_baseline: VsBaseline | None = None
    verdict: str | None = None
    model_path: str | None = None
    report: str | None = None

    def better_beyond_noise(self) -> bool:
        """The paired test interval of (winner - baseline) lies above zero."""
        vs = self.vs_baseline
        return vs is not None and vs.beyond_noise and vs.low > 0


# --------------------------------------------------------------------------- backtest
class BacktestMetrics(Artifact):
    """``backtest/date=D/metrics.json``: the served lists and the baselines against what users did.

    ``systems`` maps a system (``model`` and each baseline) to its metrics
    (``recall_at_k``, ``ndcg_at_k``, ``tail_recall_at_k``, ...); ``vs_baseline``
    the model's paired differences with intervals.
    """

    date: dt.date
    cutoff: str
    holdout_end: str
    holdout_days: int
    k: int
    target_event: str
    exclude_purchased: bool
    users_served: int
    users_with_truth: int
    users_without_list: int
    users_evaluated: int
    target_pairs: int
    tail_target_pairs: int
    catalog_size: int
    model_version: str
    strategy: str
    loss: str
    bootstrap_rounds: int
    candidate_recall: dict[str, Any]
    verdict: str
    # Nested values are kept as written (numbers, and None where a metric is undefined).
    timings_s: dict[str, Any]
    systems: dict[str, dict[str, Any]]
    vs_baseline: dict[str, dict[str, dict[str, Any]]]
    recall_curves: dict[str, list[Any]]
    recall_by_bucket: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """The plain-dict form (what the backtest report renders)."""
        return self.model_dump()
