"""The backtest: rebuild the chain as of a cutoff, serve its lists, compare with what users did.

For run date D and ``H`` holdout days the cutoff is C = (D + 1 day - H days) 00:00 UTC.
Everything the daily job builds (features, the training set, the resampled split,
a model trained with the configured strategy and loss, candidates and lists) is
rebuilt in ``DATA_DIR/backtest/date=D/work/`` from the canonical events strictly
before C, so nothing there can see the holdout, and the live outputs are never
touched (the work folder has its own Feast registry and SQLite online store,
whatever the live store is). The lists are then compared with the target events in
``[C, D + 1 day)`` beside baselines built from the same events before C, for the
same users: those who were served a list and have at least one truth item.

With an object store (``[storage]``) the rebuilt chain's Ray stages run on the store
too, under ``backtest/date=D/work/`` there: the work chain's features and training set
are pushed to that prefix, resample, train and score use it as their data directory
(so no Ray worker reads the driver's disk), and the backtest's outputs are committed
to ``backtest/date=D/`` in the store once written locally.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from longtail import schema as S
from longtail.artifacts import BacktestMetrics
from longtail.backtest.baselines import BaselineInputs, build_baselines
from longtail.backtest.evaluate import (
    MODEL,
    Evaluation,
    EvaluationInputs,
    candidate_recall,
    evaluate_systems,
    holdout_truth,
    verdict,
)
from longtail.config import Config
from longtail.errors import StageError
from longtail.ingest.result import CanonicalTables
from longtail.io import write_parquet
from longtail.paths import BacktestRun, Layout
from longtail.storage import DataStore, store_of

__all__ = ["BacktestResult", "backtest_cutoff", "run_backtest"]

log = logging.getLogger(__name__)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class BacktestResult:
    """Where a backtest wrote, and its metrics (the content of ``metrics.json``)."""

    date: dt.date
    cutoff: dt.datetime
    path: Path
    metrics: BacktestMetrics

    @property
    def report(self) -> Path:
        """The HTML report."""
        return BacktestRun(self.path).report


def backtest_cutoff(date: dt.date, *, holdout_days: int) -> dt.datetime:
    """C = (date + 1 day - holdout_days) 00:00 UTC: the holdout is the last H days up to D."""
    if holdout_days < 1:
        msg = f"holdout_days must be >= 1. Got {holdout_days!r} instead."
        raise StageError(msg)
    day = date + DAY - dt.timedelta(days=holdout_days)
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _canonical(cfg: Config, work_cfg: Config) -> CanonicalTables:
    """The live canonical tables, or a fresh ingest into the work folder when there are none."""
    from longtail.ingest import load_tables, run_ingest

    live = Layout(cfg.data_dir)
    if all(live.table(n).is_file() for n in ("events", "items", "categories")):
        return load_tables(live)
    log.info("backtest: no canonical tables in %s; ingesting into the work folder", live.root)
    run_ingest(work_cfg)
    return load_tables(Layout(work_cfg.data_dir))


def _write_cut(layout: Layout, tables: CanonicalTables, cutoff: dt.datetime) -> None:
    events, items, categories = tables.events, tables.items, tables.categories
    layout.canonical.mkdir(parents=True, exist_ok=True)
    write_parquet(events.filter(pl.col(S.EVENT_TIME) < cutoff), layout.table("events"))
    write_parquet(items.filter(pl.col(S.VALID_FROM) < cutoff), layout.table("items"))
    write_parquet(categories, layout.table("categories"))


def _work_config(cfg: Config, work: Path) -> Config:
    # The work chain never writes to a shared online store (Redis): its own SQLite.
    store = cfg.feature_store.model_copy(update={"online_store": "sqlite"})
    update: dict[str, Any] = {"data_dir": work, "feature_store": store}
    live = store_of(cfg)
    if live is not None:
        # The same place in the store as the work folder in the data directory.
        rel = work.resolve().relative_to(Path(cfg.data_dir).resolve()).as_posix()
        update["storage"] = cfg.storage.model_copy(update={"uri": f"{live.uri}/{rel}"})
    return cfg.model_copy(update=update)


def _buckets_at(layout: Layout, cutoff: dt.datetime) -> pl.DataFrame:
    from longtail.features.write import feature_paths

    _, item_path = feature_paths(layout)
    snap = pl.read_parquet(item_path, columns=[S.ITEM_ID, S.SNAPSHOT_TIME, S.POPULARITY_BUCKET])
    latest = snap.filter(pl.col(S.SNAPSHOT_TIME) <= cutoff)
    return (
        latest.sort(S.SNAPSHOT_TIME)
        .group_by(S.ITEM_ID)
        .agg(pl.col(S.POPULARITY_BUCKET).last())
        .sort(S.ITEM_ID)
    )


def _chain(
    work_cfg: Config, cutoff: dt.datetime, timings: dict[str, float], *, evaluated: pl.Series
) -> Any:
    """Features, resample, train and score in the work folder; returns the ScoreResult.

    The result keeps the candidates of the ``evaluated`` users only (candidate recall).
    """
    from longtail.features.pipeline import run_features
    from longtail.resampling import resample_train_split
    from longtail.scoring.pipeline import run_scoring
    from longtail.train import fit

    layout = Layout(work_cfg.data_dir)
    store = store_of(work_cfg)
    t = time.perf_counter()
    run = run_features(work_cfg, until=cutoff.date())
    for line in run.training.lines():
        log.info("backtest training set %s", line)
    if store is not None:
        store.delete(store.root)  # the previous backtest's work, as the local folder was
        store.push(layout.root, ["features", "training"])
    timings["features"] = time.perf_counter() - t
    strategy = work_cfg.resampling.strategy
    if strategy != "none":  # resampling starts Ray; fit does when it needs it
        t = time.perf_counter()
        resample_train_split(store or layout, work_cfg.resampling, seed=work_cfg.seed)
        timings["resample"] = time.perf_counter() - t
    t = time.perf_counter()
    version = f"backtest-{cutoff.date().isoformat()}-{strategy}-{work_cfg.train.loss}"
    trained = fit(store or layout, work_cfg, strategy=strategy, version=version)
    timings["train"] = time.perf_counter() - t
    t = time.perf_counter()
    # Lists "for the day before C" are computed from events strictly before C; on a
    # store scoring takes the store's current model, the one just trained.
    scored = run_scoring(
        work_cfg,
        date=cutoff.date() - DAY,
        model_path=None if store is not None else trained.path,
        keep_candidates_of=evaluated,
    )
    timings["score"] = time.perf_counter() - t
    return scored


def run_backtest(
    cfg: Config, *, date: dt.date | None = None, holdout_days: int | None = None
) -> BacktestResult:
    """Backtest the served lists for run date ``date`` (default: the last day of data).

    Writes ``DATA_DIR/backtest/date=D/``: ``metrics.json`` (last, so its presence
    means a complete run), ``report.html``, ``lists.parquet`` (every system's
    lists), ``per_user.parquet`` and the rebuilt chain in ``work/``.

    Raises
    ------
    StageError
        No data, a cutoff before the data starts, or no user with a target event
        in the holdout.
    """
    from longtail.scoring.pipeline import expected_users

    t0 = time.perf_counter()
    layout = Layout(cfg.data_dir)
    bt = cfg.backtest
    h = holdout_days or bt.holdout_days
    scratch = layout.root / "backtest" / "_ingest"
    tables = _canonical(cfg, _work_config(cfg, scratch))
    events, items = tables.events, tables.items
    day, cutoff, end = _holdout_window(events, date=date, holdout_days=h)
    run = layout.backtest_run(day)
    work = run.work
    # Who is evaluated is known before the chain runs: a holdout without any stops here,
    # before the work folder is emptied.
    served_users = expected_users(events, cfg, as_of=cutoff)
    truth, truth_users, users = _holdout_users(cfg, events, served_users, cutoff=cutoff, end=end)
    work_cfg = _prepare_work(cfg, tables, work=work, scratch=scratch, cutoff=cutoff)
    log.info("backtest %s: cutoff %s, holdout until %s, work in %s", day, cutoff, end, work)

    timings: dict[str, float] = {}
    scored = _chain(work_cfg, cutoff, timings, evaluated=users)
    t = time.perf_counter()
    sc = cfg.score
    inp_b = BaselineInputs.build(
        events,
        items,
        as_of=cutoff,
        window_days=bt.popular_window_days,
        exclude_purchased=sc.exclude_purchased,
    )
    systems = _systems(cfg, inp_b, served_users, scored=scored)
    inputs = _evaluation_inputs(cfg, inp_b, truth, users, work=Layout(work), cutoff=cutoff)
    evaluation = evaluate_systems(systems, inputs)
    evaluated_truth = truth.join(pl.DataFrame({S.USER_ID: users}), on=S.USER_ID, how="semi")
    cand_recall = (
        candidate_recall(evaluated_truth, scored.candidates)
        if scored.candidates is not None
        else {}
    )
    timings["evaluate"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    metrics = BacktestMetrics.model_validate(
        {
            **_settings(cfg, day=day, cutoff=cutoff, end=end, holdout_days=h),
            **_counts(served_users, truth_users, users, evaluated_truth, inputs),
            "model_version": str(scored.manifest.get("model_version", "")),
            "candidate_recall": cand_recall,
            "verdict": verdict(evaluation.vs_baseline, k=sc.k),
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
            **evaluation.to_json(),
        }
    )
    _write_outputs(run, systems=systems, evaluation=evaluation, metrics=metrics)
    live = store_of(cfg)
    if live is not None:
        _commit(live, layout, run)
    log.info("backtest %s: %s", day, metrics.verdict)
    return BacktestResult(date=day, cutoff=cutoff, path=run.path, metrics=metrics)


def _settings(
    cfg: Config, *, day: dt.date, cutoff: dt.datetime, end: dt.datetime, holdout_days: int
) -> dict[str, object]:
    """What was backtested: the window, K, the target and the strategy under test."""
    return {
        "date": day.isoformat(),
        "cutoff": cutoff.isoformat(),
        "holdout_end": end.isoformat(),
        "holdout_days": holdout_days,
        "k": cfg.score.k,
        "target_event": cfg.labels.target_event,
        "exclude_purchased": cfg.score.exclude_purchased,
        "strategy": cfg.resampling.strategy,
        "loss": cfg.train.loss,
        "bootstrap_rounds": cfg.backtest.bootstrap_rounds,
    }


def _counts(
    served_users: pl.Series,
    truth_users: pl.Series,
    users: pl.Series,
    evaluated_truth: pl.DataFrame,
    inputs: EvaluationInputs,
) -> dict[str, int]:
    """Who was served, who had truth, who was evaluated, and the pairs they bought."""
    tail = inputs.bucket_of(evaluated_truth).filter(pl.col(S.POPULARITY_BUCKET) == "tail")
    return {
        "users_served": served_users.len(),
        "users_with_truth": truth_users.len(),
        "users_without_list": truth_users.len() - users.len(),
        "users_evaluated": users.len(),
        "target_pairs": evaluated_truth.height,
        "tail_target_pairs": tail.height,
        "catalog_size": inputs.catalog.len(),
    }


def _prepare_work(
    cfg: Config,
    tables: CanonicalTables,
    *,
    work: Path,
    scratch: Path,
    cutoff: dt.datetime,
) -> Config:
    """Empty the work folder, write the canonical tables cut at ``cutoff`` into it.

    Returns the configuration of the chain rebuilt in ``work``.
    """
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    work_cfg = _work_config(cfg, work)
    _write_cut(Layout(work), tables, cutoff)
    return work_cfg


def _holdout_window(
    events: pl.DataFrame, *, date: dt.date | None, holdout_days: int
) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """The run date (default: the last day of events), the cutoff and the holdout's end.

    Raises
    ------
    StageError
        No events, or a cutoff not after the first event.
    """
    if events.is_empty():
        msg = "no canonical events to backtest"
        raise StageError(msg)
    last = events[S.EVENT_TIME].max()
    first = events[S.EVENT_TIME].min()
    if not isinstance(last, dt.datetime) or not isinstance(first, dt.datetime):
        msg = f"canonical column {S.EVENT_TIME!r} must be a datetime"
        raise StageError(msg)
    day = date or last.date()
    cutoff = backtest_cutoff(day, holdout_days=holdout_days)
    end = dt.datetime.combine(day + DAY, dt.time(), tzinfo=dt.UTC)
    if cutoff <= first:
        msg = (
            f"backtest cutoff {cutoff.isoformat()} is not after the first event "
            f"{first.isoformat()}: fewer holdout days or a later date"
        )
        raise StageError(msg)
    return day, cutoff, end


def _holdout_users(
    cfg: Config,
    events: pl.DataFrame,
    served_users: pl.Series,
    *,
    cutoff: dt.datetime,
    end: dt.datetime,
) -> tuple[pl.DataFrame, pl.Series, pl.Series]:
    """The holdout's target pairs, the users who have any, and those of them who were served.

    Raises
    ------
    StageError
        No served user has a target event in the holdout.
    """
    truth = holdout_truth(
        events,
        cutoff=cutoff,
        end=end,
        target_event=cfg.labels.target_event,
        exclude_purchased=cfg.score.exclude_purchased,
    )
    truth_users = truth[S.USER_ID].unique()
    users = truth_users.filter(truth_users.is_in(served_users.implode())).sort()
    if users.len() == 0:
        day = (end - DAY).date()
        msg = (
            f"no served user has a {cfg.labels.target_event!r} event in the holdout "
            f"[{cutoff.date()}, {day}]: more holdout days or a later date"
        )
        raise StageError(msg)
    return truth, truth_users, users


def _systems(
    cfg: Config, inp_b: BaselineInputs, served_users: pl.Series, *, scored: Any
) -> dict[str, pl.DataFrame]:
    """Every system's lists (``user_id, item_id, rank``): the model's, then the baselines'."""
    model_lists = pl.read_parquet(scored.path / "*.parquet").select(
        pl.col(S.USER_ID).cast(pl.Int64), pl.col(S.ITEM_ID).cast(pl.Int64), S.RANK
    )
    return {
        MODEL: model_lists,
        **build_baselines(
            inp_b,
            served_users,
            k=cfg.score.k,
            seed=cfg.seed,
            top_categories=cfg.backtest.top_categories,
        ),
    }


def _evaluation_inputs(
    cfg: Config,
    inp_b: BaselineInputs,
    truth: pl.DataFrame,
    users: pl.Series,
    *,
    work: Layout,
    cutoff: dt.datetime,
) -> EvaluationInputs:
    """What the evaluator needs besides the lists: truth, users, buckets, catalog, popularity."""
    popularity = inp_b.views.group_by(S.ITEM_ID).len("popularity")
    item_users = inp_b.past.group_by(S.ITEM_ID).agg(pl.col(S.USER_ID).n_unique().alias("users"))
    return EvaluationInputs(
        truth=truth,
        users=users,
        k=cfg.score.k,
        buckets=_buckets_at(work, cutoff),
        catalog=inp_b.available,
        popularity=popularity,
        item_users=item_users,
        n_users=max(inp_b.past[S.USER_ID].n_unique(), 1),
        rounds=cfg.backtest.bootstrap_rounds,
        seed=cfg.seed,
    )


def _commit(store: DataStore, layout: Layout, run: BacktestRun) -> None:
    """Put the backtest's outputs in the store, ``metrics.json`` last (it marks a whole run)."""
    root = layout.root.resolve()
    files = [run.lists, run.per_user, run.report, run.metrics]
    store.push(root, [f.resolve().relative_to(root).as_posix() for f in files])


def _write_outputs(
    run: BacktestRun,
    *,
    systems: dict[str, pl.DataFrame],
    evaluation: Evaluation,
    metrics: BacktestMetrics,
) -> None:
    """Write the lists, the per-user values, the report, and ``metrics.json`` last."""
    from longtail.backtest.report import write_backtest_report

    lists = pl.concat(
        [f.with_columns(pl.lit(n).alias("system")) for n, f in systems.items()]
    ).select("system", S.USER_ID, S.RANK, S.ITEM_ID)
    write_parquet(lists, run.lists)
    write_parquet(evaluation.per_user, run.per_user)
    write_backtest_report(metrics.as_dict(), run.report)
    metrics.write(run.metrics)
