"""Where every stage reads and writes under ``DATA_DIR``: one place, so no job guesses.

Every artifact file name is written here once; stages ask :class:`Layout` for the
path (``layout.split("train")``, ``layout.current_model``, ``layout.tune_best``, ...),
and for a folder of several files a small path class (``layout.backtest_run(date).lists``,
``layout.tune_run(run_id).leaderboard("csv")``). ``tests/test_architecture.py`` fails on
a file name written anywhere else in the package. The typed content of the JSON
artifacts is in :mod:`longtail.artifacts`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

__all__ = [
    "BACKTEST_METRICS",
    "CURRENT_MODEL",
    "DATASET_MANIFEST",
    "LAST_TRAINED",
    "MODEL_MANIFEST",
    "MODEL_WEIGHTS",
    "QUARANTINE_ROWS",
    "RAY_RUNS",
    "RUN_PREFIX",
    "SAMPLING_REPORT",
    "TRIAL_MODEL",
    "TUNE_BEST",
    "TUNE_LATEST",
    "BacktestRun",
    "Checkpoint",
    "DailyRun",
    "DataDocs",
    "Layout",
    "RecommendationPartition",
    "ScoringReport",
    "TableFormat",
    "TuneRun",
    "TuneTrial",
    "ValidationReport",
    "dataset_part",
    "split_file",
    "table_file",
]

#: The formats a tune run writes its leaderboard and configurations in.
TableFormat = Literal["parquet", "csv"]

#: The pointer to the model version scoring uses, in a models folder.
CURRENT_MODEL: Final = "current.json"
#: A saved model's manifest, in its version folder.
MODEL_MANIFEST: Final = "manifest.json"
#: The daily chain's record of its last training (date, version).
LAST_TRAINED: Final = "last_trained.json"
#: Class counts and the prior correction, beside the resampled rows of a strategy.
SAMPLING_REPORT: Final = "sampling_report.json"
#: The winning configuration of the latest tune run.
TUNE_BEST: Final = "best.json"
#: The link (or copy) to the latest tune run's folder, in the tune folder.
TUNE_LATEST: Final = "latest"
#: The backtest's metrics, in its date folder.
BACKTEST_METRICS: Final = "metrics.json"
#: The Ray Train run folders of fits in progress (resumable after a crash).
RAY_RUNS: Final = "_ray_runs"
#: In an object store, the one file that says which parts make up a dataset folder
#: (:class:`longtail.artifacts.DatasetManifest`); its single PUT commits them.
DATASET_MANIFEST: Final = "_manifest.json"
#: In an object store, the prefix of one write's parts inside a dataset folder.
RUN_PREFIX: Final = "run-"
#: A saved model's weights, in its version folder.
MODEL_WEIGHTS: Final = "model.safetensors"
#: The rejected input rows of the last ingest, in the quarantine folder.
QUARANTINE_ROWS: Final = "quarantine.parquet"
#: The version folder name of a tune trial's saved model, in the trial's folder.
TRIAL_MODEL: Final = "model"


def split_file(name: str) -> str:
    """File name of a training split (``train``, ``validation``, ``test``)."""
    return f"{name}.parquet"


def dataset_part(index: int) -> str:
    """File name of part ``index`` of a folder-of-Parquet-parts dataset (resampled rows)."""
    return f"part-{index:05d}.parquet"


def table_file(name: str) -> str:
    """File name of a canonical table (``events``, ``items``, ``categories``, ``id_map``)."""
    return f"{name}.parquet"


# Folders with several named files are small path classes: a stage that writes one
# into a temporary folder (``io.atomic_dir``) wraps that folder, ``BacktestRun(tmp)``,
# and gets the same names as a reader that asks ``Layout``.


@dataclass(frozen=True)
class BacktestRun:
    """One date's backtest folder, ``backtest/date=D/``."""

    path: Path

    @property
    def metrics(self) -> Path:
        """The metrics (:class:`longtail.artifacts.BacktestMetrics`), written last."""
        return self.path / BACKTEST_METRICS

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.path / "report.html"

    @property
    def lists(self) -> Path:
        """Every system's lists (``system, user_id, rank, item_id``)."""
        return self.path / "lists.parquet"

    @property
    def per_user(self) -> Path:
        """Each evaluated user's metric values, per system."""
        return self.path / "per_user.parquet"

    @property
    def work(self) -> Path:
        """The data directory of the chain rebuilt as of the cutoff."""
        return self.path / "work"


@dataclass(frozen=True)
class TuneTrial:
    """One trial's folder in a tune run, ``tune/<run>/trials/<trial_id>/``."""

    path: Path

    @property
    def record(self) -> Path:
        """The trial record (its point, status, per-epoch values, held-out figures)."""
        return self.path / "trial.json"

    @property
    def predictions(self) -> Path:
        """The trial's calibrated validation and test predictions."""
        return self.path / "predictions.parquet"

    @property
    def model(self) -> Path:
        """The trial's saved model (a version folder, as fit saves models)."""
        return self.path / TRIAL_MODEL


@dataclass(frozen=True)
class TuneRun:
    """One tune run's folder, ``tune/<run_id>/``."""

    path: Path

    @property
    def trials(self) -> Path:
        """The folder of every trial's folder."""
        return self.path / "trials"

    def trial(self, trial_id: str) -> TuneTrial:
        """One trial's folder."""
        return TuneTrial(self.trials / trial_id)

    @property
    def cache(self) -> Path:
        """Resampled train rows shared by trials of one strategy (removed when judged)."""
        return self.path / "cache"

    @property
    def best_model(self) -> Path:
        """The winning trial's model, copied."""
        return self.path / "best_model"

    def leaderboard(self, fmt: TableFormat) -> Path:
        """Every trial (configuration x draw x seed), as Parquet or CSV."""
        return self.path / f"leaderboard.{fmt}"

    def configurations(self, fmt: TableFormat) -> Path:
        """Every configuration, ranked, with intervals, as Parquet or CSV."""
        return self.path / f"configurations.{fmt}"

    @property
    def verdict(self) -> Path:
        """The run's verdict, one line of text."""
        return self.path / "verdict.txt"

    @property
    def summary(self) -> Path:
        """The run's summary (objective, counts, best, verdict, tune config)."""
        return self.path / "summary.json"

    @property
    def report(self) -> Path:
        """The HTML leaderboard report."""
        return self.path / "report.html"


@dataclass(frozen=True)
class ValidationReport:
    """One gate run's folder, ``reports/validation/date=D/<stage>/``."""

    path: Path

    @property
    def summary(self) -> Path:
        """The gate result and the imbalance summary."""
        return self.path / "summary.json"

    @property
    def page(self) -> Path:
        """The HTML data-quality and imbalance report."""
        return self.path / "report.html"


@dataclass(frozen=True)
class DataDocs:
    """One stage's Great Expectations Data Docs site, ``reports/data_docs/<stage>/``."""

    path: Path

    @property
    def index(self) -> Path:
        """The site's front page."""
        return self.path / "index.html"


@dataclass(frozen=True)
class ScoringReport:
    """One date's scoring report folder, ``reports/scoring/date=D/``."""

    path: Path

    @property
    def summary(self) -> Path:
        """The scoring summary (users, rows, coverage, tail share, fallbacks)."""
        return self.path / "scoring_report.json"

    @property
    def page(self) -> Path:
        """The HTML report with its plots."""
        return self.path / "scoring_report.html"


@dataclass(frozen=True)
class RecommendationPartition:
    """One date's served lists, ``recommendations/date=D/``: the rows and their manifest."""

    path: Path

    @property
    def rows(self) -> Path:
        """The lists, one Parquet file."""
        return self.path / "part-0.parquet"

    @property
    def manifest(self) -> Path:
        """What the partition holds (model version, counts, ``k``, when written)."""
        return self.path / "_manifest.json"


@dataclass(frozen=True)
class DailyRun:
    """One date's daily-run folder, ``runs/date=D/``."""

    path: Path

    @property
    def manifest(self) -> Path:
        """The steps' records (status, inputs, outputs, metrics)."""
        return self.path / "manifest.json"

    @property
    def report(self) -> Path:
        """The run's HTML page, linking every stage's report."""
        return self.path / "report.html"

    @property
    def log(self) -> Path:
        """The full log of the run (Feast, Ray, libraries)."""
        return self.path / "run.log"


@dataclass(frozen=True)
class Checkpoint:
    """One training-state folder (a Ray Train checkpoint): weights, optimizers, progress."""

    path: Path

    @property
    def model(self) -> Path:
        """The model's weights at the end of the last epoch."""
        return self.path / MODEL_WEIGHTS

    @property
    def best(self) -> Path:
        """The weights of the best epoch so far."""
        return self.path / "best.safetensors"

    @property
    def optimizer(self) -> Path:
        """The optimizers' tensors."""
        return self.path / "optimizer.safetensors"

    @property
    def state(self) -> Path:
        """Progress and the optimizers' non-tensor state."""
        return self.path / "state.json"


@dataclass(frozen=True)
class Layout:
    """Paths under one data directory."""

    root: Path

    @property
    def canonical(self) -> Path:
        """Canonical tables (events, items, categories) as Parquet."""
        return self.root / "canonical"

    @property
    def quarantine(self) -> Path:
        """Rejected input rows, with reasons."""
        return self.root / "quarantine"

    @property
    def reports(self) -> Path:
        """JSON summaries and HTML reports."""
        return self.root / "reports"

    @property
    def features(self) -> Path:
        """Feature snapshots (Feast Parquet sources)."""
        return self.root / "features"

    @property
    def training(self) -> Path:
        """Labelled training splits."""
        return self.root / "training"

    @property
    def resampled(self) -> Path:
        """Resampled training split and its sampling report."""
        return self.root / "resampled"

    @property
    def models(self) -> Path:
        """Saved models, one folder per version."""
        return self.root / "models"

    @property
    def serving_source(self) -> Path:
        """The Feast file source of the served-lists view (Feast needs one; lists are pushed)."""
        return self.root / "serving" / "user_recommendations.parquet"

    @property
    def tune(self) -> Path:
        """Ray Tune runs and leaderboards."""
        return self.root / "tune"

    @property
    def runs(self) -> Path:
        """Daily run manifests and the lock."""
        return self.root / "runs"

    @property
    def feast(self) -> Path:
        """Feast registry and the SQLite online store."""
        return self.root / "feast"

    @property
    def staging(self) -> Path:
        """Temporary folders of partitions being written, outside every dataset folder."""
        return self.root / ".staging"

    def split(self, name: str) -> Path:
        """One labelled split: ``training/<name>.parquet`` (``train``, ``validation``, ``test``)."""
        return self.training / split_file(name)

    def feature_table(self, name: str) -> Path:
        """A feature snapshot table (``user_features``, ``item_features``)."""
        return self.features / f"{name}.parquet"

    def resampled_strategy(self, strategy: str) -> Path:
        """Everything resampling wrote for ``strategy``: its rows and its report."""
        return self.resampled / strategy

    def resampled_train(self, strategy: str) -> Path:
        """The resampled train rows of ``strategy`` (a folder of Parquet parts)."""
        return self.resampled_strategy(strategy) / "train"

    def sampling_report(self, strategy: str) -> Path:
        """The sampling report of ``strategy`` (:class:`longtail.resampling.SamplingReport`)."""
        return self.resampled_strategy(strategy) / SAMPLING_REPORT

    @property
    def current_model(self) -> Path:
        """The pointer to the model scoring uses (:class:`longtail.artifacts.CurrentModel`)."""
        return self.models / CURRENT_MODEL

    def model(self, version: str) -> Path:
        """One saved model's folder (weights and :class:`longtail.artifacts.ModelManifest`)."""
        return self.models / version

    def model_manifest(self, version: str) -> Path:
        """One saved model's manifest (:class:`longtail.artifacts.ModelManifest`)."""
        return self.model(version) / MODEL_MANIFEST

    @property
    def last_trained(self) -> Path:
        """The daily chain's last training (:class:`longtail.artifacts.LastTrained`)."""
        return self.models / LAST_TRAINED

    @property
    def ray_runs(self) -> Path:
        """Ray Train's run folders of fits in progress."""
        return self.models / RAY_RUNS

    @property
    def tune_best(self) -> Path:
        """The tuned best configuration (:class:`longtail.artifacts.TunedBest`)."""
        return self.tune / TUNE_BEST

    @property
    def tune_latest(self) -> TuneRun:
        """The latest tune run (``tune/latest``, a link to its folder or a copy of it)."""
        return TuneRun(self.tune / TUNE_LATEST)

    def tune_run(self, run_id: str) -> TuneRun:
        """One tune run's folder (trials, leaderboard, report)."""
        return TuneRun(self.tune / run_id)

    @property
    def ingest_summary(self) -> Path:
        """The ingest step's row accounting."""
        return self.reports / "ingest_summary.json"

    @property
    def training_set_summary(self) -> Path:
        """The training-set build's summary (split sizes, embargo counts)."""
        return self.reports / "training_set_summary.json"

    def validation_report(self, date: dt.date, stage: str = "all") -> ValidationReport:
        """One date's (and gate stage's) JSON summary and HTML report."""
        return ValidationReport(self.reports / "validation" / f"date={date.isoformat()}" / stage)

    def data_docs(self, stage: str) -> DataDocs:
        """One gate stage's Great Expectations Data Docs site (one per stage)."""
        return DataDocs(self.reports / "data_docs" / stage)

    def backtest_metrics(self, date: dt.date) -> Path:
        """One date's backtest metrics (:class:`longtail.artifacts.BacktestMetrics`)."""
        return self.backtest_run(date).metrics

    def table(self, name: str) -> Path:
        """Path of a canonical table's Parquet file."""
        return self.canonical / table_file(name)

    @property
    def quarantine_rows(self) -> Path:
        """The rejected input rows of the last ingest, with their reasons."""
        return self.quarantine / QUARANTINE_ROWS

    def backtest(self, date: dt.date) -> Path:
        """The backtest of one date: its metrics, report and lists (and its chain in ``work/``)."""
        return self.root / "backtest" / f"date={date.isoformat()}"

    def backtest_run(self, date: dt.date) -> BacktestRun:
        """The files of one date's backtest (:class:`BacktestRun`)."""
        return BacktestRun(self.backtest(date))

    def recommendations(self, date: dt.date) -> Path:
        """The partition of recommendations for one date."""
        return self.root / "recommendations" / f"date={date.isoformat()}"

    def recommendation_partition(self, date: dt.date) -> RecommendationPartition:
        """The files of one date's recommendations partition."""
        return RecommendationPartition(self.recommendations(date))

    def scoring_report(self, date: dt.date) -> ScoringReport:
        """One date's scoring report, beside (not in) the Parquet dataset."""
        return ScoringReport(self.reports / "scoring" / f"date={date.isoformat()}")

    def daily_run(self, date: dt.date) -> DailyRun:
        """One date's daily run: its step manifest, report and log."""
        return DailyRun(self.runs / f"date={date.isoformat()}")

    @property
    def shared_steps_manifest(self) -> Path:
        """The records of the daily chain's date-independent steps (ingest)."""
        return self.runs / "shared.json"

    @property
    def run_log(self) -> Path:
        """The log of a daily run that has no date folder yet (before its date is known)."""
        return self.runs / "run.log"
