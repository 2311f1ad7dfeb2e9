"""The tune driver: run the search on Ray Tune, then write the leaderboard, report and best config.

Outputs, under ``DATA_DIR/tune/``::

    <run>/leaderboard.parquet, leaderboard.csv   every trial (configuration x draw x seed)
    <run>/configurations.parquet, .csv           every configuration, ranked, with intervals
    <run>/verdict.txt, summary.json, report.html
    <run>/best_model/                            the winner, as fit saves models
    <run>/trials/<trial_id>/                     per-trial record, predictions, model
    latest -> <run>                              (a copy where links are not possible)
    best.json                                    the winning configuration, for the daily job

With an object store (``[storage]``) the trials read the splits from it and upload
their folders to ``tune/<run>/trials/`` there (Ray Tune's own state goes there too,
``storage_filesystem``); the driver pulls the trials into its working copy, judges
them as on a local run, and commits the run folder and ``best.json`` to the store.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from longtail.artifacts import TunedBest
from longtail.config import Config, config_from_dict
from longtail.errors import ConfigError, StageError
from longtail.io import atomic_dir, write_csv, write_json, write_parquet
from longtail.paths import TUNE_BEST, TUNE_LATEST, Layout, TuneRun
from longtail.storage import DataStore, store_of
from longtail.tune.leaderboard import (
    Comparison,
    build_leaderboard,
    compare_to_baseline,
    read_trials,
)
from longtail.tune.space import param_space
from longtail.tune.trial import TrialSetup, run_trial

__all__ = ["BEST_JSON", "TuneResult", "apply_best", "load_best", "run_tune"]

log = logging.getLogger(__name__)

BEST_JSON: Final = TUNE_BEST


@dataclass(frozen=True)
class TuneResult:
    """What a tune run produced."""

    run_id: str
    run_dir: Path
    leaderboard: pl.DataFrame
    comparison: Comparison
    best: TunedBest | None


def _epochs(cfg: Config) -> int:
    return cfg.tune.epochs or cfg.train.epochs


def _setup(layout: Layout, cfg: Config, run_id: str, store: DataStore | None) -> TrialSetup:
    names = ("train", "validation", "test")
    if store is None:
        paths = {s: layout.split(s).resolve() for s in names}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        hint = "build the training set first"
    else:
        paths = {s: store.layout.split(s) for s in names}
        missing = [store.url(p) for p in paths.values() if not store.is_file(p)]
        hint = "push them with jobs/sync.py --push training"
    if missing:
        msg = f"missing split(s) {missing}; {hint}"
        raise StageError(msg)
    return TrialSetup(
        cfg=cfg,
        run_id=run_id,
        run_dir=layout.tune_run(run_id).path.resolve(),
        train=paths["train"],
        validation=paths["validation"],
        test=paths["test"],
        epochs=_epochs(cfg),
        store=store,
    )


def _scheduler(cfg: Config, *, max_t: int) -> Any:
    """FIFO (every trial runs its epochs), or ASHA applied to every trial alike.

    The baseline gets no exemption: it is a configuration like the others, with
    the same draws, seeds and budget.
    """
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if cfg.tune.scheduler == "fifo":
        return FIFOScheduler()  # type: ignore[no-untyped-call]
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=max_t,
        grace_period=min(cfg.tune.grace_period, max_t),
        reduction_factor=cfg.tune.reduction_factor,
    )


def _run_search(setup: TrialSetup) -> tuple[dict[str, str], dict[str, str]]:
    """Run the Tuner over every trial point; return trial id -> status and -> error text.

    Ray's own experiment state (pickles, for resuming) is removed afterwards;
    what the run keeps is under ``<run>/`` as JSON, Parquet and safetensors.
    """
    from ray import tune

    cfg = setup.cfg
    tc = cfg.tune
    store = setup.store
    storage = (setup.run_dir if store is None else setup.store_run).parent / "_ray"
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, setup=setup), {"cpu": tc.cpus_per_trial}
    )
    tuner = tune.Tuner(
        trainable,
        param_space=param_space(cfg),
        tune_config=tune.TuneConfig(
            metric="objective",
            mode="max",
            scheduler=_scheduler(cfg, max_t=setup.epochs),
            num_samples=1,
            time_budget_s=tc.time_budget_s,
            max_concurrent_trials=tc.max_concurrent_trials,
        ),
        run_config=tune.RunConfig(
            name=setup.run_id,
            storage_path=str(storage),
            storage_filesystem=None if store is None else store.filesystem,
            verbose=0,
        ),
    )
    try:
        grid = tuner.fit()
        _pull_trials(setup)
        return _statuses(grid, epochs=setup.epochs, run_dir=setup.run_dir)
    except Exception as exc:  # the search, not a trial, failed
        # A trial's own error is in its result; this is the search itself stopping
        # (Ray's memory monitor killing a trial actor raises here). The finished
        # trials are on disk, each a complete record: judge those rather than lose them.
        log.warning(
            "tune run %s: the search stopped (%s: %s); the verdict uses the trials on disk",
            setup.run_id, type(exc).__name__, str(exc)[:300],
        )  # fmt: skip
        # Keyed by no trial id, so it marks no trial; it names the cause when none finished.
        _pull_trials(setup)
        return {}, {"(search)": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        if store is None:
            shutil.rmtree(storage / setup.run_id, ignore_errors=True)
        else:
            store.delete(storage / setup.run_id)


def _pull_trials(setup: TrialSetup) -> None:
    """Copy the trials the store holds into the driver's run folder (nothing without a store)."""
    import pyarrow.fs as pafs

    store = setup.store
    if store is None:
        return
    trials = setup.store_run / "trials"
    if store.filesystem.get_file_info(str(trials)).type == pafs.FileType.NotFound:
        return  # no trial got as far as its first record
    root = setup.run_dir.parent.parent  # the working copy: <root>/tune/<run>
    store.pull(root, [setup.files.trials.relative_to(root).as_posix()])


def _statuses(grid: Any, *, epochs: int, run_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    known = [p.name for p in TuneRun(run_dir).trials.glob("*/")]
    statuses, errors = {}, {}
    for index in range(len(grid)):
        result = grid[index]
        metrics = result.metrics or {}
        # A trial that failed before its first report has no metrics; Tune's
        # folder name for it holds the trial id.
        folder = Path(result.path).name
        trial_id = str(
            metrics.get("trial_id") or next((t for t in known if f"_{t}_" in folder), folder)
        )
        if result.error is not None:
            errors[trial_id] = f"{type(result.error).__name__}: {result.error}"[:500]
            statuses[trial_id] = "error"
            log.warning("trial %s failed: %s", trial_id, result.error)
            continue
        ran = int(metrics.get("epoch", 0) or 0)
        stopped = bool(metrics.get("early_stopped", 0.0))
        done = ran >= epochs or stopped
        statuses[trial_id] = "completed" if done else "stopped_early"
    return statuses, errors


def _link_latest(layout: Layout, run_dir: Path) -> Path:
    """Point ``tune/latest`` at ``run_dir`` (a relative symlink, swapped in atomically)."""
    latest = layout.tune_latest.path
    tmp = layout.tune / f".{TUNE_LATEST}.tmp-{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        if latest.is_dir() and not latest.is_symlink():
            shutil.rmtree(latest)
        os.replace(tmp, latest)
    except OSError:
        log.info("symlinks unavailable; copying %s to %s", run_dir, latest)
        if latest.is_symlink():
            latest.unlink()
        with atomic_dir(latest) as folder:
            shutil.copytree(
                run_dir, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("cache")
            )
    return latest


def _best_config(comparison: Comparison, cfg: Config, run_id: str) -> TunedBest | None:
    if comparison.best_trial is None or comparison.best_label is None:
        return None
    row = comparison.configurations.filter(pl.col("label") == comparison.best_label).row(
        0, named=True
    )
    trial = comparison.leaderboard.filter(pl.col("trial_id") == comparison.best_trial).row(
        0, named=True
    )
    diff = comparison.diff
    relative = TuneRun(Path(run_id))
    raw = {
        "run_id": run_id,
        "trial_id": comparison.best_trial,
        "label": row["label"],
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "strategy": row["strategy"],
        "strategy_params": json.loads(row["strategy_params"]),
        "loss": row["loss"],
        "loss_params": json.loads(row["loss_params"]),
        "learning_rate": row["learning_rate"],
        "embedding_dim": row["embedding_dim"],
        "epochs": _epochs(cfg),
        "best_epoch": trial["best_epoch"],
        "seeds": row["seeds"],
        "hyperparameters": cfg.tune.hyperparameters,
        "objective": cfg.tune.objective,
        "objective_value": row["objective"],
        "heldout_relative_ece": row["heldout_relative_ece"],
        "heldout_log_loss_skill": row["heldout_log_loss_skill"],
        "heldout_brier_skill": row["heldout_brier_skill"],
        "is_baseline": row["is_baseline"],
        "test_objective": {
            "estimate": row["test_objective"],
            "low": row["test_objective_low"],
            "high": row["test_objective_high"],
        },
        "vs_baseline": None
        if diff is None
        else {
            "estimate": diff.estimate,
            "low": diff.low,
            "high": diff.high,
            "level": diff.level,
            "beyond_noise": diff.excludes(0.0),
            "se_test": diff.se_test,
            "se_seed": diff.se_seed,
            "seeds": list(diff.seeds),
        },
        "verdict": comparison.verdict,
        # Relative to the tune folder, so the data directory can move.
        "model_path": relative.best_model.as_posix(),
        "report": relative.report.as_posix(),
    }
    return TunedBest.model_validate(raw)


def run_tune(
    layout: Layout, cfg: Config, *, run_id: str | None = None, finish: bool = False
) -> TuneResult:
    """Compare imbalance strategies and losses with Ray Tune and write the results.

    Uses the running Ray (the job starts it with :func:`longtail.ray_runtime.ensure_ray`).

    Parameters
    ----------
    layout
        Where the splits are read and ``tune/`` is written.
    cfg
        ``tune`` (configurations, draws, seeds, budget, objective, calibration
        bounds, intervals), ``train``
        (model, epochs, calibration, ``ranking_k``), ``resampling`` (stratum and
        group cap for each strategy) and ``seed``.
    run_id
        Folder name under ``tune/``; default a UTC timestamp.
    finish
        Do not search: write the leaderboard, verdict, report and ``best.json`` of
        run ``run_id`` from the trials already in its folder (a search that was
        stopped, by the time budget's host or a killed process).

    Returns
    -------
    TuneResult
        The run folder, the leaderboard, the intervals and verdict, and the best
        configuration (None when no trial is eligible; ``best.json`` is then left as it was).

    Raises
    ------
    ConfigError
        An unknown strategy, strategy parameter or loss parameter (before Ray starts).
    StageError
        A split is missing, or no trial produced a result.
    """
    store = store_of(cfg)
    run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if run_id in (TUNE_LATEST, "_ray") or "/" in run_id or run_id.startswith("."):
        msg = (
            f"run id must be a plain folder name other than {TUNE_LATEST!r}. "
            f"Got {run_id!r} instead."
        )
        raise ConfigError(msg)
    param_space(cfg)  # validates strategies and losses before any work
    setup = _setup(layout, cfg, run_id, store)
    if finish:
        _pull_trials(setup)
    statuses, errors = _search_or_finish(setup, finish=finish)
    result = _judge(layout, cfg, setup, statuses, errors)
    if store is not None:
        _commit(store, layout, setup, best=result.best is not None)
    return result


def _commit(store: DataStore, layout: Layout, setup: TrialSetup, *, best: bool) -> None:
    """Put the judged run folder (and ``best.json``) in the store; drop the store's cache."""
    root = layout.root.resolve()
    folders = [setup.run_dir.relative_to(root).as_posix()]
    if best:
        folders.append(layout.tune_best.resolve().relative_to(root).as_posix())
    store.delete(setup.store_run / setup.files.cache.name)
    keys = store.push(root, folders)
    log.info("committed tune run %s to %s (%d objects)", setup.run_id, store.uri, len(keys))


def _search_or_finish(setup: TrialSetup, *, finish: bool) -> tuple[dict[str, str], dict[str, str]]:
    """Run the search in a new run folder, or (``finish``) take the trials already in it."""
    if finish:
        if not setup.files.trials.is_dir():
            msg = f"tune run folder {setup.run_dir} holds no trials to finish"
            raise StageError(msg)
        return {}, {}
    if setup.run_dir.exists():
        msg = f"tune run folder {setup.run_dir} exists already; pick another run id"
        raise StageError(msg)
    setup.run_dir.mkdir(parents=True)
    return _run_search(setup)


def _judge(
    layout: Layout,
    cfg: Config,
    setup: TrialSetup,
    statuses: dict[str, str],
    errors: dict[str, str],
) -> TuneResult:
    """Leaderboard, intervals, verdict, report and ``best.json`` from the run's trials."""
    from longtail.tune.report import write_report

    run_id = setup.run_id
    outcomes = read_trials(setup.run_dir, statuses=statuses, errors=errors)
    if not any(o.predictions is not None for o in outcomes):
        detail = "; ".join(sorted(set(errors.values())))[:1000]
        msg = f"tune run {run_id}: no trial produced a result. {detail}"
        raise StageError(msg)
    k = cfg.train.ranking_k
    board = build_leaderboard(outcomes, cfg.tune, k=k)
    comparison = compare_to_baseline(board, outcomes, cfg.tune, k=k)
    board = comparison.leaderboard.with_columns(pl.lit(run_id).alias("run_id"))
    files = setup.files
    write_parquet(board, files.leaderboard("parquet"))
    write_csv(board, files.leaderboard("csv"))
    write_parquet(comparison.configurations, files.configurations("parquet"))
    write_csv(comparison.configurations, files.configurations("csv"))
    files.verdict.write_text(comparison.verdict + "\n", encoding="utf-8")
    best = _best_config(comparison, cfg, run_id)
    if best is not None:
        with atomic_dir(files.best_model) as folder:
            shutil.copytree(files.trial(str(best.trial_id)).model, folder, dirs_exist_ok=True)
    write_json(
        {
            "run_id": run_id,
            "objective": cfg.tune.objective,
            "trials": board.height,
            "configurations": comparison.configurations.height,
            "eligible_configurations": int(comparison.configurations["eligible"].sum()),
            "best": None if best is None else best.model_dump(),
            "baseline_trial": comparison.baseline_trial,
            "verdict": comparison.verdict,
            "tune_config": cfg.tune.model_dump(mode="json"),
        },
        files.summary,
    )
    write_report(setup.run_dir, board, comparison, outcomes, cfg)
    shutil.rmtree(files.cache, ignore_errors=True)
    if best is not None:
        best.write(layout.tune_best)
    else:
        log.warning("tune run %s: no eligible trial; %s left as it was", run_id, layout.tune_best)
    _link_latest(layout, setup.run_dir)
    return TuneResult(run_id, setup.run_dir, board, comparison, best)


def load_best(layout: Layout) -> TunedBest | None:
    """Return the best configuration of the latest tune run, or None when none exists.

    The daily job trains with it (see :func:`apply_best`): strategy, loss,
    learning rate and embedding size, with the objective, the paired test
    interval against the baseline (``vs_baseline``), the verdict and the model's path.

    Raises
    ------
    StageError
        ``best.json`` exists but is not valid JSON or lacks a key.
    """
    path = layout.tune_best
    if not path.is_file():
        return None
    return TunedBest.load(path)


def apply_best(cfg: Config, best: TunedBest) -> Config:
    """Return ``cfg`` with the tuned strategy, loss, learning rate and embedding size.

    ``resampling.strategy``/``params`` and ``train.loss``/``loss_params``/
    ``learning_rate``/``embedding_dim`` are replaced; everything else stays.

    Raises
    ------
    ConfigError
        The values do not validate against the config's types.
    """
    raw = cfg.model_dump(mode="python")
    raw["resampling"] |= {"strategy": best.strategy, "params": dict(best.strategy_params)}
    raw["train"] |= {
        "loss": best.loss,
        "loss_params": dict(best.loss_params),
        "learning_rate": float(best.learning_rate),
        "embedding_dim": int(best.embedding_dim),
    }
    return config_from_dict(raw)
