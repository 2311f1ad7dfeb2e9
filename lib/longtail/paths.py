"""Where every stage reads and writes under ``DATA_DIR``: one place, so no job guesses.

Every artifact file name is written here once; stages ask :class:`Layout` for the
path (``layout.split("train")``, ``layout.current_model``, ``layout.tune_best``, ...).
The typed content of the JSON artifacts is in :mod:`longtail.artifacts`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "BACKTEST_METRICS",
    "CURRENT_MODEL",
    "DATASET_MANIFEST",
    "LAST_TRAINED",
    "MODEL_MANIFEST",
    "RAY_RUNS",
    "RUN_PREFIX",
    "SAMPLING_REPORT",
    "TUNE_BEST",
    "Layout",
    "split_file",
]

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
#: The backtest's metrics, in its date folder.
BACKTEST_METRICS: Final = "metrics.json"
#: The Ray Train run folders of fits in progress (resumable after a crash).
RAY_RUNS: Final = "_ray_runs"
#: In an object store, the one file that says which parts make up a dataset folder
#: (:class:`longtail.artifacts.DatasetManifest`); its single PUT commits them.
DATASET_MANIFEST: Final = "_manifest.json"
#: In an object store, the prefix of one write's parts inside a dataset folder.
RUN_PREFIX: Final = "run-"


def split_file(name: str) -> str:
    """File name of a training split (``train``, ``validation``, ``test``)."""
    return f"{name}.parquet"


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

    def tune_run(self, run_id: str) -> Path:
        """One tune run's folder (trials, leaderboard, report)."""
        return self.tune / run_id

    @property
    def ingest_summary(self) -> Path:
        """The ingest step's row accounting."""
        return self.reports / "ingest_summary.json"

    @property
    def training_set_summary(self) -> Path:
        """The training-set build's summary (split sizes, embargo counts)."""
        return self.reports / "training_set_summary.json"

    def backtest_metrics(self, date: dt.date) -> Path:
        """One date's backtest metrics (:class:`longtail.artifacts.BacktestMetrics`)."""
        return self.backtest(date) / BACKTEST_METRICS

    def table(self, name: str) -> Path:
        """Path of a canonical table's Parquet file."""
        return self.canonical / f"{name}.parquet"

    def backtest(self, date: dt.date) -> Path:
        """The backtest of one date: its metrics, report and lists (and its chain in ``work/``)."""
        return self.root / "backtest" / f"date={date.isoformat()}"

    def recommendations(self, date: dt.date) -> Path:
        """The partition of recommendations for one date."""
        return self.root / "recommendations" / f"date={date.isoformat()}"

    def scoring_report(self, date: dt.date) -> Path:
        """The folder of one date's scoring report, beside (not in) the Parquet dataset."""
        return self.reports / "scoring" / f"date={date.isoformat()}"
