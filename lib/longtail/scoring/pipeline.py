"""Batch scoring on Ray Data: candidates -> features as of D -> calibrated scores -> top-K.

The order of a Ray job (CONVENTIONS.md): the datasets, the per-worker callable,
the driver.

* Candidates are built on the driver in Polars (they need the whole event log),
  one chunk of users at a time (:class:`longtail.candidates.CandidatePlan`), and
  each chunk is put in Ray's object store as Arrow tables, one block per user hash
  bucket, before the next is built: the driver never holds every served user's
  candidates, and no read task competes with the scoring actors for CPUs.
* :class:`BatchScorer` is applied with ``map_batches``: it opens the feature store
  and loads the model once per worker in ``__init__`` (on the GPU when the
  worker has one), and its ``__call__`` fetches features through the *same*
  feature service as training, only with the scoring time as the timestamp,
  scores under ``torch.inference_mode()``, and keeps each user's top K of the
  batch (the top K of per-batch top Ks is the top K, tail re-rank included), so
  a tenth of the scored pairs comes back to the driver.
* The final top-K runs on the driver, the lists are checked and written
  atomically, pushed to the online store, and reported.

With an object store for the data directory (``[storage]``) the actors read only the
store: the model version ``models/current.json`` names and the feature snapshots
``features/`` (pushed by ``jobs/sync.py --push features models``), with the driver's
Feast registry handed to them as bytes; the driver builds the candidates from its
local working copy (ingest's tables), writes the lists there, and commits them to
the store as a dataset folder (:meth:`longtail.storage.DataStore.push`).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from longtail import schema as S
from longtail.candidates import CandidatePlan, candidate_config
from longtail.candidates.generate import PAIR_CARTS, PAIR_SOURCE, PAIR_VIEWS
from longtail.config import Config
from longtail.errors import StageError
from longtail.io import atomic_dir
from longtail.paths import CURRENT_MODEL, Layout
from longtail.scoring.output import write_partition
from longtail.scoring.report import catalog_size, scoring_summary, write_scoring_report
from longtail.scoring.topk import top_k
from longtail.storage import DataStore, store_of

if TYPE_CHECKING:
    from longtail.models.saved import LoadedModel

__all__ = [
    "PAIRS_PER_BLOCK",
    "BatchScorer",
    "ScoreResult",
    "block_count",
    "candidate_blocks",
    "expected_users",
    "for_actors",
    "reduce_batch",
    "run_scoring",
    "scoring_time",
]

log = logging.getLogger(__name__)

PAIRS = "_pairs"
#: Lists are ranked by the calibrated probability that is written, not the raw logit:
#: per-bucket prior offsets (resampling by label x bucket) reorder the two.
RANK_BY = S.PROBABILITY
#: Largest candidate block (one ``map_batches`` call): bounds an actor's feature frame.
PAIRS_PER_BLOCK = 262_144


@dataclass(frozen=True)
class ScoreResult:
    """What one scoring run wrote."""

    date: dt.date
    path: Path
    manifest: dict[str, Any]
    summary: dict[str, Any]
    #: The scoring report's folder (``reports/scoring/date=D``): the partition
    #: holds only Parquet and ``_manifest.json``.
    report: Path
    #: The scored (user, item, source) candidates of the users asked for
    #: (``keep_candidates_of``): the backtest's candidate recall.
    candidates: pl.DataFrame | None = None


def scoring_time(date: dt.date) -> dt.datetime:
    """Lists for run date D are computed at the end of D: from events strictly before D+1 00:00."""
    return dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def expected_users(events: pl.DataFrame, cfg: Config, *, as_of: dt.datetime) -> pl.Series:
    """The users to serve: every user seen before ``as_of``, or those active in the window."""
    past = events.filter(pl.col(S.EVENT_TIME) < as_of)
    if cfg.score.users == "active":
        since = as_of - dt.timedelta(days=cfg.score.active_days)
        past = past.filter(pl.col(S.EVENT_TIME) >= since)
    return past.get_column(S.USER_ID).unique().sort()


class BatchScorer:
    """Ray Data callable: features through the feature service, then the calibrated model.

    Parameters
    ----------
    config_json
        The run's :class:`Config` as JSON (plain data travels to workers).
    model_path
        The saved model's folder.
    as_of
        Scoring time (ISO 8601, UTC).
    reduce_to_top_k
        Return only each user's top K of the batch (``score.k`` and
        ``score.tail_min_share`` of the config) with a ``_pairs`` column (the
        user's scored pairs in this batch on its first row, 0 on the others);
        False returns every scored pair.
    data_store
        The object store of the data directory: ``model_path`` is then the model
        version's key in it, the snapshots are read from its ``features/``, and
        ``registry`` (the driver's Feast registry) names the feature service.
    registry
        The bytes of the driver's Feast registry file (with ``data_store`` only).
    """

    def __init__(
        self,
        *,
        config_json: str,
        model_path: str,
        as_of: str,
        reduce_to_top_k: bool = True,
        data_store: DataStore | None = None,
        registry: bytes | None = None,
    ) -> None:
        import tempfile

        import torch

        from longtail.models import load_model
        from longtail.store import feature_store, feature_store_on_object_store
        from longtail.store.offline import keep_source_slices

        # Every batch asks for features at the same time: read each source's window once.
        keep_source_slices()
        self.cfg = Config.model_validate_json(config_json)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if data_store is None:
            self.store = feature_store(self.cfg)
            self.model = load_model(model_path, device=device)
        else:
            if registry is None:
                msg = "a BatchScorer on an object store needs the driver's Feast registry"
                raise StageError(msg)
            # This node may share no disk with the driver: a scratch folder of its own.
            self._scratch = tempfile.TemporaryDirectory(prefix="longtail-scorer-")
            scratch = Path(self._scratch.name)
            self.store = feature_store_on_object_store(
                self.cfg, data_store, registry=registry, folder=scratch / "feast"
            )
            model_dir = data_store.download_folder(model_path, scratch / "model")
            self.model = load_model(model_dir, device=device)
        self.service = self.cfg.feature_store.feature_service
        self.as_of = dt.datetime.fromisoformat(as_of)
        self.reduce = reduce_to_top_k

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Score one batch of (user, item) candidates."""
        import torch

        from longtail.training_set import features_for

        cands = pl.from_arrow(batch)
        assert isinstance(cands, pl.DataFrame)
        rows = cands.select(S.USER_ID, S.ITEM_ID).with_columns(
            pl.lit(self.as_of).dt.cast_time_unit("us").alias(S.EVENT_TIME)
        )
        feats = features_for(self.store, rows, service=self.service)
        # Pair features come with the candidates (computed from the same events).
        pair = [c for c in cands.columns if c.startswith("pair_")]
        feats = feats.hstack(cands.select(pair)) if pair else feats
        with torch.inference_mode():
            pred = self.model.predict(feats)
        bucket = (
            feats.get_column(S.POPULARITY_BUCKET)
            if S.POPULARITY_BUCKET in feats.columns
            else pl.Series(S.POPULARITY_BUCKET, ["tail"] * feats.height)
        )
        scored = cands.with_columns(
            pl.Series(S.SCORE, np.asarray(pred.logits, dtype=np.float64)),
            pl.Series(S.PROBABILITY, np.asarray(pred.probabilities, dtype=np.float64)),
            bucket.alias(S.POPULARITY_BUCKET),
        )
        if not self.reduce:
            return scored.to_arrow()
        return reduce_batch(
            scored, k=self.cfg.score.k, tail_min_share=self.cfg.score.tail_min_share
        ).to_arrow()  # ranked by RANK_BY


def reduce_batch(scored: pl.DataFrame, *, k: int, tail_min_share: float) -> pl.DataFrame:
    """Keep each user's top K of one batch, and count the pairs scored.

    Exact: every item of a user's final list (:func:`top_k` over all the user's
    pairs) is in the top K of the batch it was scored in, including the tail
    items the re-rank guarantees, so :func:`top_k` over the concatenated batch
    results gives the same lists (``tests/scoring/test_topk.py``).

    Returns
    -------
    pl.DataFrame
        The kept rows (no ``rank``) with ``_pairs``: the user's scored pairs in
        this batch on the user's first kept row, 0 on the others.
    """
    kept = top_k(scored, k=k, tail_min_share=tail_min_share, score=RANK_BY)
    pairs = scored.group_by(S.USER_ID).len(PAIRS)
    first = pl.col(S.RANK) == 1
    return (
        kept.join(pairs, on=S.USER_ID, how="left")
        .with_columns(pl.when(first).then(pl.col(PAIRS)).otherwise(0).cast(pl.Int64).alias(PAIRS))
        .drop(S.RANK)
    )


def block_count(pairs: int, *, actors: int) -> int:
    """Blocks for ``pairs`` candidates: a few per actor, none above :data:`PAIRS_PER_BLOCK`."""
    return max(2 * actors, -(-pairs // PAIRS_PER_BLOCK))


def for_actors(cands: pl.DataFrame) -> pl.DataFrame:
    """The candidate columns an actor needs, in the narrowest exact dtypes.

    ``source`` stays on the driver (only the backtest's candidate recall reads it),
    and the pair counts and 0/1 source flags travel as integers, which the model's
    encoding casts back to the same float64 values: 37 bytes a pair instead of 87,
    for the 33M pairs that sit in Ray's object store at 10M events.
    """
    narrow = {c: pl.UInt32 for c in (PAIR_VIEWS, PAIR_CARTS)} | dict.fromkeys(PAIR_SOURCE, pl.UInt8)
    return cands.drop("source", strict=False).with_columns(
        pl.col(c).cast(dtype) for c, dtype in narrow.items() if c in cands.columns
    )


def candidate_blocks(cands: pl.DataFrame, *, parts: int) -> list[pa.Table]:
    """Split candidates into ``parts`` Arrow tables by a hash of the user (a user in one block)."""
    bucketed = cands.with_columns((pl.col(S.USER_ID).hash(seed=0) % parts).alias("_part"))
    groups = bucketed.partition_by("_part", as_dict=True, include_key=False)
    return [groups[key].to_arrow() for key in sorted(groups)]


@dataclass
class _CandidateBlocks:
    """Every chunk's candidate blocks in the object store, and what the run reports of them."""

    refs: list[Any]
    pairs: int
    actors: int
    user_types: pl.DataFrame
    kept: pl.DataFrame | None


def _candidates(
    cfg: Config,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.Series,
    *,
    as_of: dt.datetime,
    warming: threading.Thread,
    keep_of: pl.Series | None,
) -> _CandidateBlocks:
    """Build the users' candidates a chunk at a time and put each chunk's blocks in Ray.

    The first chunk is built while Ray Data's helper actors start (``warming``); the
    actors are counted once they are up, when all of Ray's CPUs are free again.
    ``keep_of``: users whose (user, item, source) candidates are also kept on the driver.
    """
    import ray

    plan = CandidatePlan(
        events, items, users, as_of=as_of, seed=cfg.seed, cfg=candidate_config(cfg.score),
        head_share=cfg.features.head_share, torso_share=cfg.features.torso_share,
    )  # fmt: skip
    refs: list[Any] = []
    kept: list[pl.DataFrame] = []
    pairs, actors = 0, 0
    keep = None if keep_of is None else pl.DataFrame({S.USER_ID: keep_of.cast(pl.Int64)})
    for chunk in plan:
        pairs += chunk.height
        if keep is not None:
            kept.append(
                chunk.select(S.USER_ID, S.ITEM_ID, "source").join(keep, on=S.USER_ID, how="semi")
            )
        if not actors:
            warming.join()
            actors = _actors()[0]
        if chunk.height:
            parts = block_count(chunk.height, actors=actors)
            blocks = candidate_blocks(for_actors(chunk), parts=parts)
            refs.extend(ray.put(block) for block in blocks)
    log.info("scoring %d users, %d candidate pairs as of %s", users.len(), pairs, as_of)
    return _CandidateBlocks(
        refs=refs, pairs=pairs, actors=actors, user_types=plan.user_types,
        kept=pl.concat(kept) if kept else None,
    )  # fmt: skip


def _list_rows(ranked: pl.DataFrame, cfg: Config, model: LoadedModel) -> pl.DataFrame:
    """The written list rows: rank, item, scores, and which model and features made them."""
    info = model.manifest
    generated_at = dt.datetime.now(dt.UTC)
    return ranked.select(
        S.USER_ID, S.RANK, S.ITEM_ID, S.SCORE, S.PROBABILITY,
        pl.lit(info.version).alias(S.MODEL_VERSION),
        pl.lit(info.strategy).alias(S.STRATEGY),
        pl.lit(cfg.feature_store.feature_service).alias(S.FEATURE_SERVICE),
        pl.lit(generated_at).dt.cast_time_unit("us").alias(S.GENERATED_AT),
    )  # fmt: skip


def _push(cfg: Config, recs: pl.DataFrame, *, date: dt.date, as_of: dt.datetime) -> None:
    """Push the lists to the online store (Feast view ``user_recommendations``)."""
    from longtail.scoring.serving import push_lists
    from longtail.store import feature_store

    pushed = push_lists(feature_store(cfg), cfg, recs, date=date, as_of=as_of)
    log.info("pushed %d lists to the online store (view user_recommendations)", pushed)


def _load_model(layout: Layout, model_path: Path | None) -> LoadedModel:
    """The model to score with: ``model_path``, or the current one under ``DATA_DIR/models``."""
    from longtail.models import load_model

    model_dir = model_path or layout.models
    if not model_dir.exists() or (model_path is None and not (model_dir / CURRENT_MODEL).is_file()):
        msg = f"no trained model under {model_dir}: run jobs/train.py first"
        raise StageError(msg)
    return load_model(model_dir)


@dataclass(frozen=True)
class _StoreInputs:
    """What the actors read when the data directory is an object store."""

    store: DataStore
    #: The model version's key (``bucket/prefix/models/<version>``).
    model_key: str
    #: The driver's Feast registry file, as bytes.
    registry: bytes


def _store_inputs(
    store: DataStore, layout: Layout, scratch: Path
) -> tuple[LoadedModel, _StoreInputs]:
    """The store's current model (loaded on the driver from ``scratch``) and the actors' inputs.

    Checked before any actor starts: the model, both snapshot tables and the registry.

    Raises
    ------
    StageError
        The store has no current model or no snapshots, or the working copy no registry.
    """
    from longtail.artifacts import CurrentModel
    from longtail.models import load_model
    from longtail.store.definitions import ITEM_VIEW, USER_VIEW

    paths = store.layout
    if not store.is_file(paths.current_model):
        msg = (
            f"no trained model in {store.url(paths.current_model)}: run jobs/train.py "
            "on the store, or push one with jobs/sync.py --push models"
        )
        raise StageError(msg)
    version = store.read_artifact(CurrentModel, paths.current_model).version
    model_key = str(paths.model(version))
    for view in (USER_VIEW, ITEM_VIEW):
        if not store.is_file(paths.feature_table(view)):
            msg = (
                f"no feature snapshots at {store.url(paths.feature_table(view))}: "
                "push them with jobs/sync.py --push features"
            )
            raise StageError(msg)
    registry = layout.feast / "registry.db"
    if not registry.is_file():
        msg = f"no Feast registry at {registry}: run jobs/features.py on this working copy"
        raise StageError(msg)
    model = load_model(store.download_folder(model_key, scratch / "model"))
    return model, _StoreInputs(store, model_key, registry.read_bytes())


def _publish(store: DataStore, layout: Layout, folders: list[Path]) -> None:
    """Commit the written partition (a dataset folder: parts, then one manifest PUT) and report."""
    names = [folder.relative_to(layout.root).as_posix() for folder in folders]
    keys = store.push(layout.root, names)
    log.info("committed %s to %s (%d objects)", ", ".join(names), store.uri, len(keys))


def _actors() -> tuple[int, int]:
    """Scoring actors (one per GPU, else per CPU) and the GPUs they take."""
    from longtail.ray_runtime import ensure_ray

    ray = ensure_ray()
    cpus = max(int(ray.available_resources().get("CPU", 1)), 1)
    gpus = int(ray.available_resources().get("GPU", 0))
    return gpus or cpus, gpus


def _score_pairs(
    cfg: Config,
    cands: _CandidateBlocks,
    *,
    model_path: Path,
    as_of: dt.datetime,
    remote: _StoreInputs | None = None,
) -> pl.DataFrame:
    """Score every candidate pair on Ray Data (one actor per GPU, else per CPU).

    With ``remote`` the actors read the model and the snapshots from the object store.
    Returns the actors' reduced frames (each user's top-k with its scores) joined;
    raises :class:`StageError` when the actors did not score every pair.
    """
    from longtail.ray_runtime import ensure_ray

    ray = ensure_ray()
    actors, gpus = cands.actors, _actors()[1]
    ds = ray.data.from_arrow_refs(cands.refs)
    where: dict[str, Any] = {"model_path": str(model_path)}
    if remote is not None:
        where = {
            "model_path": remote.model_key,
            "data_store": remote.store,
            "registry": remote.registry,
        }
    scored_ds = ds.map_batches(
        BatchScorer,
        fn_constructor_kwargs={
            "config_json": cfg.model_dump_json(),
            "as_of": as_of.isoformat(),
            **where,
        },
        batch_format="pyarrow",
        batch_size=None,  # a whole block: every pair of a user in one call
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
        num_gpus=1 if gpus else 0,
    )
    tables = list(scored_ds.iter_batches(batch_format="pyarrow", batch_size=None))
    frames = [pl.from_arrow(t) for t in tables if t.num_rows]
    scored = pl.concat([f for f in frames if isinstance(f, pl.DataFrame)])
    n_scored = int(scored.get_column(PAIRS).sum())
    if n_scored != cands.pairs:
        msg = f"scored {n_scored} pairs for {cands.pairs} candidates"
        raise StageError(msg)
    return scored.drop(PAIRS)


def run_scoring(
    cfg: Config,
    *,
    date: dt.date,
    model_path: Path | None = None,
    keep_candidates_of: pl.Series | None = None,
    simulate_crash_before_swap: bool = False,
) -> ScoreResult:
    """Score every expected user for ``date`` and write the lists.

    Long because its parameters are documented; the steps it runs are calls to their own functions.

    Parameters
    ----------
    cfg
        Run configuration.
    date
        Run date D; features and candidates use events strictly before D+1.
    model_path
        A saved model folder; default ``DATA_DIR/models`` (its ``current.json``).
    keep_candidates_of
        Users whose scored candidates the result keeps (``ScoreResult.candidates``);
        by default none, since every served user's are tens of millions of rows.
    simulate_crash_before_swap
        Testing hook: the partition is written to its temporary folder, then the
        run raises before the swap (and before the online push), so a test can
        check that the previous partition is left intact.

    Returns
    -------
    ScoreResult
        Where the partition is, its manifest and the scoring summary.

    Raises
    ------
    StageError
        No model, no canonical tables, or the lists break an invariant.
    """
    from longtail.ingest import load_tables
    from longtail.ray_runtime import warm_ray_data

    t0 = time.perf_counter()
    layout = Layout(cfg.data_dir)
    as_of = scoring_time(date)
    store = store_of(cfg)
    remote: _StoreInputs | None = None
    if store is None:
        model = _load_model(layout, model_path)
    elif model_path is not None:
        msg = f"model_path {model_path} is local; on {store.uri} scoring uses the store's model"
        raise StageError(msg)
    else:
        with tempfile.TemporaryDirectory(prefix="longtail-score-") as scratch:
            model, remote = _store_inputs(store, layout, Path(scratch))
    info = model.manifest
    # Ray Data's helper actors start while the driver builds the candidates.
    warming = warm_ray_data()
    canonical = load_tables(layout)
    events, items = canonical.events, canonical.items
    users = expected_users(events, cfg, as_of=as_of)
    if users.len() == 0:
        msg = f"no users with events before {as_of.isoformat()}"
        raise StageError(msg)
    cands = _candidates(
        cfg, events, items, users, as_of=as_of, warming=warming, keep_of=keep_candidates_of
    )
    user_types = cands.user_types
    sc = cfg.score
    if cands.pairs == 0:
        msg = f"no candidates for any of {users.len()} users: is the catalog empty?"
        raise StageError(msg)
    scored = _score_pairs(cfg, cands, model_path=model.path, as_of=as_of, remote=remote)
    ranked = top_k(scored, k=sc.k, tail_min_share=sc.tail_min_share, score=RANK_BY)
    recs = _list_rows(ranked, cfg, model)
    summary = scoring_summary(
        ranked, user_types=user_types, catalog_size=catalog_size(events, items, as_of=as_of)
    )
    target = layout.recommendations(date)
    written = write_partition(
        recs, target, expected_users=users, k=sc.k,
        manifest={
            "date": date.isoformat(), "as_of": as_of.isoformat(),
            "model_version": info.version,
            "strategy": info.strategy,
            "feature_service": cfg.feature_store.feature_service,
            "candidate_pairs": cands.pairs,
            "users_per_fallback": summary["users_per_fallback"],
            "duration_s": round(time.perf_counter() - t0, 3),
        },
        staging=layout.staging,
        fail_after_write=simulate_crash_before_swap,
    )  # fmt: skip
    with atomic_dir(layout.scoring_report(date).path) as folder:
        write_scoring_report(ranked, summary, folder, title=f"Scoring report {date.isoformat()}")
    _push(cfg, recs, date=date, as_of=as_of)
    log.info(
        "wrote %d lists (%d rows, %d short) to %s",
        written["users_written"], written["rows"], written["short_lists"], target,
    )  # fmt: skip
    if store is not None:
        _publish(store, layout, [target, layout.scoring_report(date).path])
    return ScoreResult(
        date=date, path=target, manifest=written, summary=summary,
        report=layout.scoring_report(date).path, candidates=cands.kept,
    )  # fmt: skip
