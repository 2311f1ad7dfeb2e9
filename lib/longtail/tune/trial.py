"""One Tune trial: resample the train split for its strategy, train, calibrate, report per epoch.

Why a function trainable and not a ``TorchTrainer`` per trial: on a small
machine a Ray Train run costs ~20 s of controller, worker-group and Ray Data
start-up and needs CPUs beside the trial's own, which on 2 cores starves or
deadlocks concurrent trials. A trial here is one process: it resamples in
process with :func:`longtail.resampling.resample_frame` (the same code path as
the resampling stage, cached per strategy and parameters), then runs the
*same* epoch loop as the Ray Train worker (:func:`longtail.train.worker.run_epochs`),
reporting every epoch so ASHA can stop it. Validation and test rows are never
resampled. Every epoch the model is calibrated on validation by the same
:class:`longtail.train.Calibrator` as :func:`longtail.train.fit` (sampling-prior
correction from the sampling report, the loss's shift, then Platt/temperature/
isotonic), and the objective and ECE are those of the calibrated probabilities.

Each trial writes ``<run>/trials/<trial_id>/``: ``trial.json`` (settings,
history, timings), and at each epoch that improves the objective the model,
finished by :func:`longtail.train.finish_model` like every model of the project
(``model/``), and the calibrated predictions on validation and test
(``predictions.parquet``), read by the leaderboard.

With an object store (``TrialSetup.store``) a trial reads the splits and the
resampling cache from it and writes its folder into a scratch folder of its own
process, uploading each file to ``<run>/trials/<trial_id>/`` in the store as it is
written (the model before the record that names its epoch); the driver pulls the
trials back to judge them. No node needs a disk another one sees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import torch

from longtail.artifacts import TuneOrigin
from longtail.config import Config, ResamplingConfig
from longtail.errors import StageError
from longtail.io import write_json, write_parquet
from longtail.losses import weight_ratio
from longtail.metrics import brier_skill, ece, log_loss_skill, relative_ece
from longtail.models.arch import ConversionModel
from longtail.models.calibration import Calibration
from longtail.models.features import FeatureSpec, encode, fit_feature_spec
from longtail.models.saved import to_tensors
from longtail.paths import SAMPLING_REPORT, TRIAL_MODEL, TuneRun, TuneTrial, split_file
from longtail.resampling import SamplingReport, resample_frame
from longtail.schema import (
    ITEM_ID,
    LABEL,
    POPULARITY_BUCKET,
    PROBABILITY,
    RAW_PROBABILITY,
    SPLIT,
    USER_ID,
)
from longtail.storage import DataStore
from longtail.train import (
    Batches,
    Calibrator,
    ClassCounts,
    EpochEnd,
    ModelRun,
    Optimizer,
    WorkerConfig,
    build_model_config,
    build_optimizers,
    finish_model,
    run_epochs,
)
from longtail.tune.objective import objective_value
from longtail.tune.space import TrialSpec, is_baseline, trial_spec

__all__ = [
    "TrialSetup",
    "resampled_train",
    "run_trial",
    "train_trial",
]

log = logging.getLogger(__name__)

_KEEP: Final = (USER_ID, ITEM_ID, POPULARITY_BUCKET, LABEL)


@dataclass(frozen=True)
class TrialSetup:
    """What every trial shares: the config, the split files and the run folder (absolute).

    With ``store`` the split paths are the object store's keys, and ``run_dir`` is
    where a trial process writes before it uploads (see :meth:`publish`).
    """

    cfg: Config
    run_id: str
    run_dir: Path
    train: Path
    validation: Path
    test: Path
    epochs: int
    store: DataStore | None = None

    @property
    def files(self) -> TuneRun:
        """The run folder's files (trials, cache, leaderboard, ...)."""
        return TuneRun(self.run_dir)

    @property
    def store_run(self) -> Path:
        """The run folder's key in the object store (``bucket/prefix/tune/<run>``)."""
        if self.store is None:
            msg = "a trial setup without an object store has no store run folder"
            raise StageError(msg)
        return self.store.layout.tune_run(self.run_id).path

    def read(self, path: Path) -> pl.DataFrame:
        """One split (or cache) file, from the local disk or the object store."""
        if self.store is None:
            return pl.read_parquet(path)
        return pl.DataFrame(pl.from_arrow(self.store.read_table([str(path)])))

    def publish(self, *paths: Path) -> None:
        """Upload files (or folders) written under ``run_dir`` to the store's run folder.

        Nothing to do without a store: ``run_dir`` is then the run folder itself.
        """
        if self.store is None:
            return
        for path in paths:
            files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
            for f in files:
                key = self.store_run / f.relative_to(self.run_dir)
                self.store.write_bytes(key, f.read_bytes())


def _cache_key(setup: TrialSetup, rcfg: ResamplingConfig) -> str:
    if setup.store is None:
        stat = setup.train.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    else:
        info = setup.store.filesystem.get_file_info(str(setup.train))
        size, mtime = info.size, info.mtime_ns
    raw = json.dumps(
        {
            "resampling": rcfg.model_dump(mode="json"),
            "seed": setup.cfg.seed,
            "train": [str(setup.train), size, mtime],
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def resampled_train(
    setup: TrialSetup, spec: TrialSpec
) -> tuple[pl.DataFrame, SamplingReport | None, bool]:
    """The train rows for the trial's strategy, and the sampling report (None for "none").

    Resampling uses ``resampling`` (stratum, group cap, target rows) with the
    trial's strategy and parameters, and is cached under ``<run>/cache/`` so
    trials of one strategy resample once.

    Returns
    -------
    tuple
        Rows, the sampling report, and whether it came from the cache.
    """
    train = setup.read(setup.train)
    if spec.strategy == "none":
        return train, None, False
    rcfg = setup.cfg.resampling.model_copy(
        update={"strategy": spec.strategy, "params": dict(spec.strategy_params)}
    )
    folder = setup.files.cache / f"{spec.strategy}-{_cache_key(setup, rcfg)}"
    rows_path, report_path = folder / split_file("train"), folder / SAMPLING_REPORT
    store = setup.store
    if store is None and report_path.is_file() and rows_path.is_file():
        return pl.read_parquet(rows_path), SamplingReport.load(report_path), True
    if store is not None:
        # The cache is shared through the store: trials on other nodes resample once too.
        rows_key = setup.store_run / rows_path.relative_to(setup.run_dir)
        report_key = setup.store_run / report_path.relative_to(setup.run_dir)
        if store.is_file(report_key) and store.is_file(rows_key):
            return setup.read(rows_key), store.read_artifact(SamplingReport, report_key), True
    rows, sampling = resample_frame(train, rcfg, seed=setup.cfg.seed)
    write_parquet(rows, rows_path)
    sampling.write(report_path)  # written last: its presence marks a complete entry
    setup.publish(rows_path, report_path)
    return rows, sampling, False


def _batches(
    arrays: dict[str, np.ndarray], *, batch_size: int, seed: int | None
) -> Callable[[], Iterator[dict[str, torch.Tensor]]]:
    n = arrays["label"].shape[0]

    def gen() -> Iterator[dict[str, torch.Tensor]]:
        order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield to_tensors({k: v[idx] for k, v in arrays.items()})

    return gen


def _encoded(frame: pl.DataFrame, fspec: FeatureSpec) -> dict[str, np.ndarray]:
    out = encode(frame, fspec)
    out["label"] = frame[LABEL].cast(pl.Float32).to_numpy()
    return out


def _finite(x: float) -> bool:
    return not math.isnan(x) and not math.isinf(x)


class _Tracker:
    """The trial's per-epoch calibration, objective, artifacts and report."""

    def __init__(
        self,
        *,
        setup: TrialSetup,
        run: ModelRun,
        trial: TuneTrial,
        model: ConversionModel,
        fspec: FeatureSpec,
        validation: pl.DataFrame,
        test: pl.DataFrame,
        record: dict[str, Any],
        report: Callable[[dict[str, float]], None],
        trial_started: float,
    ) -> None:
        self.setup, self.run, self.trial = setup, run, trial
        self.model, self.fspec = model, fspec
        self.validation, self.test = validation, test
        self.record, self.report = record, report
        # The same calibration as train.fit: sampling prior, loss shift, then the scaling.
        self.calibrator = Calibrator.for_run(run, validation)
        self.best: float | None = None
        self.started = time.perf_counter()
        self.trial_started = trial_started

    def calibrate(self, end: EpochEnd) -> Calibration:
        return self.calibrator.fit(end.val_logits, end.val_labels)

    def heldout_calibration(self, end: EpochEnd) -> dict[str, float]:
        """Calibration of validation probabilities, cross-fitted over two halves of the users.

        Calibration is fitted on validation, so its in-sample ECE flatters every
        trial; here each half is scored by a calibration fitted on the other half.
        Falls back to the in-sample fit when a half lacks a class. Returns
        ``val_ece``, ``val_relative_ece``, ``val_log_loss_skill``, ``val_brier_skill``.
        """
        fold = self.validation[USER_ID].to_numpy() % 2 == 1
        groups_all = self.calibrator.groups
        prob = np.empty(end.val_logits.size, dtype=np.float64)
        for held in (fold, ~fold):
            try:
                cal = self.calibrator.fit(end.val_logits, end.val_labels, rows=~held)
            except StageError:
                cal = self.calibrate(end)
            groups = None if groups_all is None else groups_all[held]
            prob[held] = cal.apply(end.val_logits[held], groups)
        scored = self.validation.with_columns(pl.Series(PROBABILITY, prob))
        return {
            "val_ece": ece(scored),
            "val_relative_ece": relative_ece(scored),
            "val_log_loss_skill": log_loss_skill(scored),
            "val_brier_skill": brier_skill(scored),
        }

    def __call__(self, end: EpochEnd, _best_weights: dict[str, torch.Tensor]) -> None:
        cfg = self.setup.cfg
        calibration = self.calibrate(end)
        prob = calibration.apply(end.val_logits, self.calibrator.groups)
        scored = self.validation.with_columns(pl.Series(PROBABILITY, prob))
        value = objective_value(scored, cfg.tune.objective, k=cfg.train.ranking_k)
        heldout = self.heldout_calibration(end)
        seconds = time.perf_counter() - self.started
        improved = self.best is None or (_finite(value) and not value <= self.best)
        if improved:
            self.best = value
            self._save(end, calibration)
            self.record.update(
                best_epoch=end.epoch, objective=value, seconds_to_best=seconds, **heldout
            )
        metrics = {
            **end.metrics,
            "objective": value if _finite(value) else 0.0,
            **{k: v if _finite(v) else 0.0 for k, v in heldout.items()},
            "best_objective": self.best if self.best is not None and _finite(self.best) else 0.0,
            "train_seconds": seconds,
        }
        self.record["history"].append({**metrics, "objective": value})
        self.record["epochs_run"] = end.epoch
        self.record["train_seconds"] = seconds
        # Written every epoch: the scheduler may end the trial right after any report.
        self.record["total_seconds"] = time.perf_counter() - self.trial_started
        self.record["finished"] = end.stop or end.epoch >= self.setup.epochs
        write_json(self.record, self.trial.record)
        self.setup.publish(self.trial.record)
        self.report(metrics)

    def _save(self, end: EpochEnd, calibration: Calibration) -> None:
        """Save this epoch's model (the trial's best so far) and its calibrated predictions."""
        origin = TuneOrigin(
            run_id=self.setup.run_id,
            trial_id=self.record["trial_id"],
            epoch=end.epoch,
            objective=self.setup.cfg.tune.objective,
        )
        done = finish_model(
            self.model,
            self.fspec,
            run=dataclasses.replace(self.run, tune=origin),
            validation=self.validation,
            test=self.test,
            models_dir=self.trial.path,
            version=TRIAL_MODEL,
            calibration=calibration,
            val_logits=end.val_logits,
        )
        frames = [
            rows.select(*_KEEP, pl.lit(name).alias(SPLIT), PROBABILITY, RAW_PROBABILITY)
            for name, rows in done.scored.items()
        ]
        write_parquet(pl.concat(frames), self.trial.predictions)
        # Before the record that names this epoch as the best (written after this).
        self.setup.publish(self.trial.model, self.trial.predictions)


def train_trial(
    setup: TrialSetup,
    point: dict[str, Any],
    *,
    trial_id: str,
    report: Callable[[dict[str, float]], None],
) -> dict[str, Any]:
    """Run one trial in this process; the Tune-independent core of :func:`run_trial`.

    Parameters
    ----------
    setup
        Shared settings and paths.
    point
        The trial's point (:func:`longtail.tune.space.trial_points`): ``strategy``,
        ``loss`` (label), ``learning_rate``, ``embedding_dim``, and ``seed``,
        ``draw``, ``replica`` (default ``cfg.seed``, 0, 0).
    trial_id
        Names the trial's folder under ``<run>/trials/``.
    report
        Called once per epoch with the metrics (``objective``, ``val_ece``,
        ``train_loss``, ``epoch``, ...); Tune's ``report`` in a trial.

    Returns
    -------
    dict
        The trial record also written to ``trial.json``.

    Raises
    ------
    StageError
        The (resampled) train rows lack a class, or validation lacks one.
    """
    spec = trial_spec(point, setup.cfg)
    # The trial's seed drives resampling, initialisation and batch order alike.
    setup = dataclasses.replace(setup, cfg=setup.cfg.model_copy(update={"seed": spec.seed}))
    if setup.store is None:
        return _train_trial(setup, spec, point, trial_id=trial_id, report=report)
    # This process may share no disk with the driver: it writes into a scratch folder
    # of its own and uploads every file (TrialSetup.publish).
    with tempfile.TemporaryDirectory(prefix=f"longtail-trial-{trial_id}-") as scratch:
        local = dataclasses.replace(setup, run_dir=Path(scratch) / setup.run_id)
        return _train_trial(local, spec, point, trial_id=trial_id, report=report)


def _train_trial(
    setup: TrialSetup,
    spec: TrialSpec,
    point: dict[str, Any],
    *,
    trial_id: str,
    report: Callable[[dict[str, float]], None],
) -> dict[str, Any]:
    """:func:`train_trial` with the trial's seed set and its run folder chosen."""
    cfg = setup.cfg
    trial = setup.files.trial(trial_id)
    record = _new_record(setup, spec, trial_id=trial_id, baseline=is_baseline(point, cfg))
    started = time.perf_counter()
    write_json(record, trial.record)
    setup.publish(trial.record)
    train, run = _train_rows(setup, spec, record, started=started)
    fspec = fit_feature_spec(
        train,
        hash_buckets_user=run.train.hash_buckets_user,
        hash_buckets_item=run.train.hash_buckets_item,
        sequence_length=run.train.sequence_length,
    )
    model, optimizers, wc = _model(setup, run, fspec)
    validation = setup.read(setup.validation)
    test = setup.read(setup.test)
    train_arrays = _encoded(train, fspec)
    val_batches = _batches(_encoded(validation, fspec), batch_size=8192, seed=None)

    def train_batches(epoch: int) -> Batches:
        return _batches(train_arrays, batch_size=wc.batch_size, seed=cfg.seed * 1_000 + epoch)()

    tracker = _Tracker(
        setup=setup,
        run=run,
        trial=trial,
        model=model,
        fspec=fspec,
        validation=validation,
        test=test,
        record=record,
        report=report,
        trial_started=started,
    )
    run_epochs(
        wc,
        model=model,
        optimizers=optimizers,
        train_batches=train_batches,
        val_batches=val_batches,
        on_epoch=tracker,
        device=torch.device("cpu"),
    )
    return record


def _new_record(
    setup: TrialSetup, spec: TrialSpec, *, trial_id: str, baseline: bool
) -> dict[str, Any]:
    """The trial record (``trial.json``) before any epoch."""
    return {
        "trial_id": trial_id,
        "run_id": setup.run_id,
        **spec.to_json(),
        "label": spec.label,
        "baseline": baseline,
        "history": [],
        "epochs_run": 0,
        "best_epoch": None,
    }


def _model(
    setup: TrialSetup, run: ModelRun, fspec: FeatureSpec
) -> tuple[ConversionModel, list[Optimizer], WorkerConfig]:
    """The trial's freshly seeded model, its optimizers and the epoch loop's settings."""
    tc = run.train
    torch.manual_seed(setup.cfg.seed)
    model = ConversionModel(build_model_config(tc, fspec))
    optimizers = build_optimizers(model, kind=tc.optimizer, learning_rate=tc.learning_rate)
    wc = WorkerConfig.from_train(
        tc,
        model=model.cfg.to_json(),
        loss=tc.loss,
        loss_params=dict(tc.loss_params),
        n_negative=run.counts.negative,
        n_positive=run.counts.positive,
        epochs=setup.epochs,
        learning_rate=tc.learning_rate,
        seed=setup.cfg.seed,
    )
    return model, optimizers, wc


def _train_rows(
    setup: TrialSetup, spec: TrialSpec, record: dict[str, Any], *, started: float
) -> tuple[pl.DataFrame, ModelRun]:
    """The trial's (resampled) train rows and what it trains with; counts go into ``record``.

    Raises
    ------
    StageError
        The rows lack a class.
    """
    cfg = setup.cfg
    train, sampling_report, cached = resampled_train(setup, spec)
    record.update(resample_seconds=time.perf_counter() - started, resample_cached=cached)
    n_pos = int(train[LABEL].cast(pl.Int64).sum())
    n_neg = train.height - n_pos
    if n_pos == 0 or n_neg == 0:
        msg = f"trial {spec.label}: train rows need both classes. Got {n_pos} and {n_neg}."
        raise StageError(msg)
    record.update(
        train_rows=train.height,
        class_counts={"negative": n_neg, "positive": n_pos},
        # The positive-to-negative weight the loss really applies (None for focal).
        loss_weight_ratio=weight_ratio(
            spec.loss, spec.loss_params, n_negative=n_neg, n_positive=n_pos
        ),
    )
    if sampling_report is not None:
        record["sampling_offsets"] = sampling_report.log_odds_offset_by
    run = ModelRun(
        strategy=spec.strategy,
        sampling=sampling_report,
        # The train section as this trial uses it: what the manifest records.
        train=cfg.train.model_copy(
            update={
                "loss": spec.loss,
                "loss_params": spec.loss_params,
                "learning_rate": spec.learning_rate,
                "embedding_dim": spec.embedding_dim,
                "epochs": setup.epochs,
            }
        ),
        counts=ClassCounts(negative=n_neg, positive=n_pos),
        seed=cfg.seed,
        feature_service=cfg.feature_store.feature_service,
        strategy_params=dict(spec.strategy_params),
    )
    return train, run


def run_trial(config: dict[str, Any], *, setup: TrialSetup) -> None:
    """The Ray Tune function trainable: :func:`train_trial` reporting to ``ray.tune.report``.

    Give it its shared settings with ``tune.with_parameters(run_trial, setup=...)``;
    its Tune config holds the point under ``point`` (see :func:`longtail.tune.space.param_space`).
    """
    from ray import tune

    torch.set_num_threads(max(1, int(setup.cfg.tune.cpus_per_trial)))
    trial_id = tune.get_context().get_trial_id()
    train_trial(setup, config["point"], trial_id=trial_id, report=tune.report)
