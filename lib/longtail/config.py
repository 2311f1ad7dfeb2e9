"""One typed, frozen configuration object loaded from one TOML file.

Every job takes ``--config PATH`` and ``--data-dir DIR``; both end up here.
Each stage reads only its own section. Unknown keys are errors, so a typo never
silently falls back to a default, and every error names the key and the value.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from longtail.errors import ConfigError
from longtail.schema import LossName, Objective, StrategyName

__all__ = [
    "BacktestConfig",
    "Config",
    "DailyConfig",
    "FeatureStoreConfig",
    "FeaturesConfig",
    "GenericSource",
    "IngestConfig",
    "LabelsConfig",
    "LossVariant",
    "RayConfig",
    "RayListen",
    "ResamplingConfig",
    "RetailRocketSource",
    "ScoreConfig",
    "SplitConfig",
    "StorageConfig",
    "StrategyName",
    "SyntheticSource",
    "TrainConfig",
    "TuneConfig",
    "ValidationConfig",
    "load_config",
]


class _Section(BaseModel):
    """Base of every section: frozen, no unknown keys, strict-ish types."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


# --------------------------------------------------------------------------- sources


class SyntheticSource(_Section):
    """A seeded synthetic shop with a long tail of item popularity."""

    kind: Literal["synthetic"] = "synthetic"
    n_users: int = Field(3_000, ge=1)
    n_items: int = Field(1_500, ge=1)
    n_top_categories: int = Field(6, ge=1)
    n_leaf_categories: int = Field(40, ge=1)
    start: dt.date = dt.date(2024, 1, 1)
    days: int = Field(45, ge=1)
    sessions_per_user_day: float = Field(0.25, gt=0)
    views_per_session: float = Field(4.0, gt=0)
    zipf_exponent: float = Field(1.1, gt=0)
    purchase_rate: float = Field(0.02, gt=0, lt=1)
    cart_rate: float = Field(0.06, gt=0, lt=1)
    price_change_share: float = Field(0.3, ge=0, le=1)
    unavailable_share: float = Field(0.05, ge=0, le=1)
    # Real shops: many purchases come on a later visit, days after the cart, right
    # after a return view of the item (consideration); items are viewed again in later
    # sessions; niche items convert better once viewed (so many purchases are tail).
    consideration_share: float = Field(0.5, ge=0, le=1)
    consideration_days: float = Field(2.0, gt=0)
    repeat_view_share: float = Field(0.2, ge=0, le=1)
    repeat_view_days: float = Field(1.5, gt=0)
    popularity_conversion: float = -0.3

    @model_validator(mode="after")
    def _check(self) -> SyntheticSource:
        if self.n_leaf_categories < self.n_top_categories:
            msg = (
                "source.n_leaf_categories must be >= source.n_top_categories. "
                f"Got {self.n_leaf_categories!r} instead."
            )
            raise ValueError(msg)
        if self.purchase_rate >= self.cart_rate:
            msg = (
                f"source.purchase_rate must be below source.cart_rate. Got {self.purchase_rate!r}."
            )
            raise ValueError(msg)
        return self


class RetailRocketSource(_Section):
    """The public RetailRocket layout: events.csv, item_properties*.csv, category_tree.csv."""

    kind: Literal["retailrocket"] = "retailrocket"
    path: Path
    events: str = "events.csv"
    item_properties: list[str] = Field(
        default_factory=lambda: ["item_properties_part1.csv", "item_properties_part2.csv"]
    )
    category_tree: str = "category_tree.csv"
    # Non-standard helper file some copies ship: ItemId,categoryid,parentid.
    item_category: str | None = "item_category.csv"


class EventTimeSpec(_Section):
    """How the generic source's event_time column is encoded."""

    unit: Literal["s", "ms", "us", "ns"] | None = None
    format: str | None = None
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _one_of(self) -> EventTimeSpec:
        if (self.unit is None) == (self.format is None):
            msg = "source.event_time needs exactly one of 'unit' or 'format'."
            raise ValueError(msg)
        return self


class EventNames(_Section):
    """Raw event names mapped to canonical event types; ``ignore`` is counted, not loaded."""

    view: list[str] = Field(default_factory=lambda: ["view"])
    cart: list[str] = Field(default_factory=lambda: ["cart", "addtocart"])
    purchase: list[str] = Field(default_factory=lambda: ["purchase", "transaction"])
    ignore: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> EventNames:
        seen: dict[str, str] = {}
        for kind in ("view", "cart", "purchase", "ignore"):
            for name in getattr(self, kind):
                if name in seen:
                    msg = (
                        f"source.event_names: {name!r} is listed under both "
                        f"{seen[name]!r} and {kind!r}."
                    )
                    raise ValueError(msg)
                seen[name] = kind
        return self


ColumnRef = str | Annotated[int, Field(ge=1)]


class GenericColumns(_Section):
    """Canonical name -> source column name, or 1-based position."""

    user_id: ColumnRef
    item_id: ColumnRef
    event_type: ColumnRef
    event_time: ColumnRef
    category_id: ColumnRef | None = None
    transaction_id: ColumnRef | None = None
    price: ColumnRef | None = None


class GenericSource(_Section):
    """Any CSV or Parquet of events, mapped by configuration alone."""

    kind: Literal["generic"] = "generic"
    events: Path
    has_header: bool = True
    separator: str = ","
    columns: GenericColumns
    event_time: EventTimeSpec = EventTimeSpec(unit="s")
    event_names: EventNames = EventNames()
    # 'int': ids must be integers (others are quarantined); 'hash': any string id is
    # mapped to a stable 63-bit integer and the mapping is written next to the tables.
    id_encoding: Literal["int", "hash"] = "int"


Source = Annotated[
    SyntheticSource | RetailRocketSource | GenericSource, Field(discriminator="kind")
]

# --------------------------------------------------------------------------- stages


class IngestConfig(_Section):
    """Rules applied while turning a source into canonical tables."""

    future_tolerance_hours: float = Field(24.0, ge=0)
    # Fixes "now" for the future-timestamp rule so reruns are reproducible; None: wall clock.
    now: dt.datetime | None = None
    # Earlier timestamps are implausible: quarantined as timestamp_out_of_range (naive = UTC).
    earliest_timestamp: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    # When set, only events in [window_start, window_end) are loaded; the rest are
    # quarantined as outside_window (a date means 00:00 UTC).
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    # Higher prices are quarantined as price_out_of_range.
    max_price: float = Field(1e10, gt=0)

    @model_validator(mode="after")
    def _check(self) -> IngestConfig:
        start, end = self.window_start, self.window_end
        if start is not None and end is not None and _utc(start) >= _utc(end):
            msg = (
                "ingest.window_start must be before ingest.window_end. "
                f"Got {start.isoformat()} and {end.isoformat()} instead."
            )
            raise ValueError(msg)
        return self


def _utc(t: dt.datetime) -> dt.datetime:
    """A naive datetime is UTC."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


class FeaturesConfig(_Section):
    """Point-in-time user and item feature snapshots."""

    user_windows_days: list[int] = Field(default_factory=lambda: [1, 7, 30])
    item_windows_days: list[int] = Field(default_factory=lambda: [7, 30])
    # Beta prior for smoothed conversion: (purchases + a) / (views + a + b).
    smoothing_prior_rate: float = Field(0.02, gt=0, lt=1)
    smoothing_prior_strength: float = Field(50.0, gt=0)
    # Items whose cumulative share of views reaches head_share are head, then torso.
    head_share: float = Field(0.5, gt=0, lt=1)
    torso_share: float = Field(0.8, gt=0, lt=1)
    # A snapshot serves entity rows up to ttl_days after it (the Feast view TTL).
    ttl_days: int = Field(2, ge=1)
    # Only the last history_days snapshots are written (windows still see older events).
    history_days: int | None = Field(None, ge=1)
    # Length of user_recent_items (last viewed item ids before the snapshot); 0: off.
    recent_items: int = Field(20, ge=0)
    # Build the user snapshots one bucket of users per this many events (the same
    # table); unset: in one go. At 1M-3M events it lowered no peak (docs/scale.md).
    user_partition_events: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> FeaturesConfig:
        if not self.head_share < self.torso_share:
            msg = (
                f"features.head_share must be below features.torso_share. Got {self.head_share!r}."
            )
            raise ValueError(msg)
        return self


class LabelsConfig(_Section):
    """Which (user, item, time) rows are labelled; positive if u then does ``target_event`` on i.

    ``population = "candidates"`` (default) labels the candidate sets the scoring job
    would have generated at past snapshot times (00:00 UTC every
    ``snapshot_every_days``, for up to ``users_per_snapshot`` served users each, or
    ``eval_users_per_snapshot`` in validation and test), with
    pair features: the population the ranker scores. ``"views"`` labels every view at
    its time (the earlier design; kept for comparison by backtest). In the train split
    only, negatives of candidate rows are kept at ``train_negative_rate``.
    """

    target_event: Literal["purchase", "cart"] = "purchase"
    horizon_hours: float = Field(72.0, gt=0)
    population: Literal["candidates", "views"] = "candidates"
    snapshot_every_days: int = Field(1, ge=1)
    users_per_snapshot: int = Field(600, ge=1)
    # Validation and test keep every row of fewer users (the true distribution, smaller).
    eval_users_per_snapshot: int = Field(300, ge=1)
    train_negative_rate: float = Field(0.03, gt=0, le=1)


class SplitConfig(_Section):
    """Time split of labelled rows: fractions of the rows in time order, or dates."""

    validation_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.15, gt=0, lt=1)
    validation_start: dt.date | None = None
    test_start: dt.date | None = None
    # No label window crosses a split boundary: drop the rows whose window reaches the
    # next split, cut those windows there, or (auto) drop when the data is long enough
    # (see training_set/embargo.py).
    embargo: Literal["auto", "drop", "truncate"] = "auto"

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.validation_fraction + self.test_fraction >= 1:
            msg = "split.validation_fraction + split.test_fraction must be below 1."
            raise ValueError(msg)
        return self


class FeatureStoreConfig(_Section):
    """Feast settings; ``feature_repo/feature_store.yaml`` is generated from these."""

    project: str = "longtail"
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_connection_string: str = "localhost:6379"
    feature_service: str = "ranking_v1"


class ValidationConfig(_Section):
    """Great Expectations gates and the imbalance report.

    Every check is critical (fails the gate) unless named in ``warn_only``, either
    by check name for every suite (``"row_count"``) or as ``"suite.check"``
    (``"user_features.freshness"``); see ``longtail.validation.suites.CHECKS``.
    """

    # Label rate bounds: target events / views for canonical events, mean label per split.
    label_rate_min: float = Field(0.002, ge=0, le=1)
    label_rate_max: float = Field(0.2, ge=0, le=1)
    # The same per training row: candidate rows hold a few positives per user among
    # ~200 candidates (about 1e-4 on the demo), view rows a few percent.
    training_label_rate_min: float = Field(1e-5, ge=0, le=1)
    training_label_rate_max: float = Field(0.2, ge=0, le=1)
    # Row counts may move by this fraction of the previous passing run.
    row_count_tolerance: float = Field(0.5, ge=0)
    # Relative change of the label rate, and absolute change of the item Gini.
    max_label_rate_drift: float = Field(0.5, ge=0)
    max_gini_drift: float = Field(0.1, ge=0)
    warn_only: list[str] = Field(default_factory=list)
    top_categories: int = Field(10, ge=1)
    # Timestamps must lie within this many days before the run date.
    window_days: int = Field(365, ge=1)
    # The newest feature snapshot may lag the run date by this many days.
    max_snapshot_lag_days: int = Field(0, ge=0)
    # Build the Great Expectations Data Docs (HTML) on every run.
    data_docs: bool = True
    # Feature tables and training splits above this many rows run their feature
    # checks on a seeded sample of this size, key and label checks on the whole
    # table (longtail.validation.sampling); 0 validates every row of everything.
    sample_rows: int = Field(100_000, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ValidationConfig:
        if self.label_rate_min > self.label_rate_max:
            msg = (
                "validation.label_rate_min must not exceed validation.label_rate_max. "
                f"Got {self.label_rate_min!r} > {self.label_rate_max!r} instead."
            )
            raise ValueError(msg)
        return self


class ResamplingConfig(_Section):
    """Imbalance strategy applied to the training split only."""

    strategy: StrategyName = "none"
    stratum: Literal["label_bucket", "category", "user_hash"] = "label_bucket"
    user_hash_buckets: int = Field(8, ge=1)
    max_group_rows: int = Field(200_000, ge=100)
    params: dict[str, Any] = Field(default_factory=dict)
    target_rows: int | None = Field(None, ge=1)


class TrainConfig(_Section):
    """Model, loss and Ray Train settings.

    ``num_workers``, ``use_gpu`` and ``mixed_precision`` default (None) to what the
    cluster has: one worker per GPU with bfloat16 autocast when GPUs are present,
    else one CPU worker in float32. ``in_process`` defaults (None) to Ray Train's
    local mode (the training function in the driver's process) when the run is one
    CPU worker on a one-node cluster, and to Ray Train worker actors otherwise.
    """

    loss: LossName = "bce"
    loss_params: dict[str, float] = Field(default_factory=dict)
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(1024, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    embedding_dim: int = Field(16, ge=1)
    hash_buckets_user: int = Field(50_000, ge=2)
    hash_buckets_item: int = Field(50_000, ge=2)
    # Length of the user's recent-items sequence; the encoder is on only when > 0
    # and the training rows carry a ``user_recent_items`` list column.
    sequence_length: int = Field(0, ge=0)
    sequence_layers: int = Field(1, ge=1)
    over_hidden: list[int] = Field(default_factory=lambda: [64, 32])
    calibration: Literal["none", "temperature", "platt", "isotonic"] = "platt"
    num_workers: int | None = Field(None, ge=1)
    use_gpu: bool | None = None
    mixed_precision: bool | None = None
    cpus_per_worker: float = Field(1.0, gt=0)
    # Ray Train's local mode (ScalingConfig(num_workers=0)): the same training
    # function in the driver's process, without the controller and worker actors
    # whose start-up was 22 of a 34 s train step on 2 cores; no restart after a
    # crash (the job's rerun retrains). None: on for one CPU worker on one node.
    in_process: bool | None = None
    # sparse_adam: sparse id-table gradients with SparseAdam + Adam for the rest;
    # dense_adam: everything dense with one Adam (the baseline).
    optimizer: Literal["sparse_adam", "dense_adam"] = "sparse_adam"
    early_stopping_metric: Literal["pr_auc", "roc_auc"] = "pr_auc"
    early_stopping_patience: int = Field(2, ge=1)
    shuffle_buffer_rows: int = Field(20_000, ge=0)
    # A worker holds its share of the train split in memory (read once with pyarrow,
    # no Ray Data, shuffled per epoch) when that share has at most this many rows;
    # above, it streams the split from Ray Data every epoch through the shuffle
    # buffer. 0: always stream.
    cache_train_rows: int = Field(2_000_000, ge=0)
    max_failures: int = Field(2, ge=0)
    ranking_k: int = Field(10, ge=1)
    retrain_every_days: int = Field(7, ge=1)


class LossVariant(_Section):
    """One loss of the tune search, with its parameters (see ``longtail.losses``)."""

    loss: LossName
    params: dict[str, float] = Field(default_factory=dict)


def _default_losses() -> list[LossVariant]:
    return [
        LossVariant(loss="bce"),
        LossVariant(loss="weighted_bce"),
        LossVariant(loss="focal", params={"alpha": 0.25, "gamma": 2.0}),
        LossVariant(loss="focal", params={"alpha": 0.5, "gamma": 1.0}),
        # beta from the class counts (1 - 1/n_negative): see longtail.losses.default_beta.
        LossVariant(loss="class_balanced"),
    ]


def _default_strategy_params() -> dict[str, dict[str, Any]]:
    # Resample to one positive per five negatives rather than imbalanced-learn's
    # "auto" 1:1, which multiplies (or divides) the train rows by ~30 at a 3% rate.
    ratio = {"sampling_strategy": 0.2}
    return {
        name: dict(ratio)
        for name in (
            "random_under",
            "random_over",
            "smote",
            "borderline_smote",
            "adasyn",
            "cluster_centroids",
            "smote_tomek",
        )
    }


class TuneConfig(_Section):
    """Ray Tune comparison of imbalance strategies and losses.

    A *configuration* is one strategy x loss; the baseline (strategy "none",
    plain BCE) is always one. ``num_samples`` configurations are compared (None:
    every strategy in ``strategies`` x every loss in ``losses``; empty
    ``strategies``: every registered resampler), each with its
    ``strategy_params``; the resampling stratum and group cap come from
    ``resampling``. Fairness: with ``hyperparameters = "searched"`` every
    configuration, the baseline included, is trained at the same ``draws``
    learning-rate/embedding-size draws and keeps its best draw on validation;
    with ``"fixed"`` all run at ``train.learning_rate``/``train.embedding_dim``.
    Every (configuration, draw) is trained with ``seeds`` seeds, and the test
    intervals combine seed and test-user variance.
    """

    num_samples: int | None = Field(None, ge=1)
    hyperparameters: Literal["searched", "fixed"] = "searched"
    draws: int = Field(2, ge=1)
    seeds: int = Field(3, ge=1)
    time_budget_s: float = Field(900.0, gt=0)
    # pr_auc (pointwise) or the backtest's list metrics at every test snapshot time
    # (recall_at_k, ndcg_at_k, tail_recall_at_k; on candidate rows), or tail_pr_auc.
    objective: Objective = "pr_auc"
    # Eligibility on held-out (cross-fitted) validation calibration, seed-averaged:
    # ECE over the base rate, and log-loss / Brier skill against the base-rate predictor.
    max_relative_ece: float = Field(0.5, gt=0)
    min_log_loss_skill: float = 0.0
    min_brier_skill: float = 0.0
    # Optional absolute ECE bound on top (None: off; at a 4% base rate 0.05 admits a constant 0).
    max_ece: float | None = Field(None, gt=0)
    strategies: list[StrategyName] = Field(default_factory=list)
    bootstrap_samples: int = Field(1_000, ge=10)
    strategy_params: dict[str, dict[str, Any]] = Field(default_factory=_default_strategy_params)
    losses: list[LossVariant] = Field(default_factory=_default_losses, min_length=1)
    learning_rate_min: float = Field(1e-3, gt=0)
    learning_rate_max: float = Field(1e-2, gt=0)
    embedding_dims: list[int] = Field(default_factory=lambda: [8, 16, 32], min_length=1)
    # Epochs per trial (None: train.epochs).
    epochs: int | None = Field(None, ge=1)
    # "fifo": every trial runs its epochs (early stopping aside); "asha" stops trials
    # early, the baseline's like any other.
    scheduler: Literal["fifo", "asha"] = "fifo"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)
    cpus_per_trial: float = Field(1.0, gt=0)
    max_concurrent_trials: int | None = Field(None, ge=1)
    ci_level: float = Field(0.95, gt=0, lt=1)
    # Resample whole users in the bootstrap: rows of one user are not independent.
    cluster_by_user: bool = True

    @model_validator(mode="after")
    def _check(self) -> TuneConfig:
        if self.learning_rate_min > self.learning_rate_max:
            msg = (
                "tune.learning_rate_min must not exceed tune.learning_rate_max. "
                f"Got {self.learning_rate_min!r} > {self.learning_rate_max!r} instead."
            )
            raise ValueError(msg)
        if any(d < 1 for d in self.embedding_dims):
            msg = f"tune.embedding_dims must be positive. Got {self.embedding_dims!r} instead."
            raise ValueError(msg)
        return self


class ScoreConfig(_Section):
    """Batch scoring: candidates, top-K and the tail re-rank."""

    k: int = Field(20, ge=1)
    max_candidates: int = Field(200, ge=1)
    tail_exploration_share: float = Field(0.1, ge=0, le=1)
    tail_min_share: float = Field(0.0, ge=0, le=1)
    exclude_purchased: bool = True
    users: Literal["all", "active"] = "all"
    active_days: int = Field(30, ge=1)


class BacktestConfig(_Section):
    """The offline judge: rebuild the chain H days back, compare its lists with what users did."""

    holdout_days: int = Field(3, ge=1)
    # Paired bootstrap rounds over users for model minus each baseline.
    bootstrap_rounds: int = Field(1000, ge=100)
    # Views in this many days before the cutoff define "popular" (and ARP, novelty).
    popular_window_days: int = Field(30, ge=1)
    top_categories: int = Field(3, ge=1)


RayListen = Literal["loopback", "node"]


class RayConfig(_Section):
    """A local Ray started by a job (joining a cluster via ``RAY_ADDRESS`` ignores this).

    ``loopback``: every Ray server listens on 127.0.0.1 only; ``node``: on the
    machine's address, reachable from the network (Ray's default).
    """

    listen: RayListen = "loopback"


#: URI schemes of object stores the Ray stages read and write (pyarrow's S3FileSystem).
OBJECT_STORE_SCHEMES = ("s3",)


class StorageConfig(_Section):
    """An object store the Ray stages use instead of a disk every node shares.

    ``uri`` (``s3://bucket/prefix``) holds the same folders as a data directory
    (``training/``, ``features/``, ``resampled/``, ``models/``, ``recommendations/``,
    ``tune/``, ``backtest/``); the stages that run on Ray workers (resampling, training,
    scoring, tuning, the backtest's rebuilt chain) read and write there only, so the
    cluster needs no shared filesystem. ``data_dir`` stays the driver's local working
    copy, copied to and from the bucket by ``jobs/sync.py``. ``endpoint_url`` points at
    an S3-compatible server (``http://127.0.0.1:8333``); unset, AWS. Credentials come
    only from the standard ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/
    ``AWS_SESSION_TOKEN``) environment variables, never from this file. ``work_dir`` is
    the local working copy when ``data_dir`` itself is given as the URI (default: a
    folder under the temp dir).
    """

    uri: str | None = None
    endpoint_url: str | None = None
    region: str = "us-east-1"
    work_dir: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> StorageConfig:
        if self.uri is not None:
            scheme, sep, rest = self.uri.partition("://")
            if not sep or scheme not in OBJECT_STORE_SCHEMES or not rest.strip("/"):
                msg = (
                    f"storage.uri must be s3://BUCKET[/PREFIX] "
                    f"(supported: {', '.join(s + '://' for s in OBJECT_STORE_SCHEMES)}). "
                    f"Got {self.uri!r} instead."
                )
                raise ValueError(msg)
        if self.endpoint_url is not None and not self.endpoint_url.startswith(
            ("http://", "https://")
        ):
            msg = (
                "storage.endpoint_url must start with http:// or https://. "
                f"Got {self.endpoint_url!r} instead."
            )
            raise ValueError(msg)
        return self

    @property
    def enabled(self) -> bool:
        """Whether the Ray stages use the object store."""
        return self.uri is not None


def is_object_store_uri(value: object) -> bool:
    """Whether ``value`` is a string with a URI scheme (``s3://...``), not a local path."""
    return isinstance(value, str) and "://" in value


class DailyConfig(_Section):
    """The daily chain."""

    retrain: Literal["always", "schedule", "never"] = "schedule"
    # When the daily job trains with tune/best.json instead of [resampling] and [train].
    use_tuned: Literal["beyond_noise", "always", "never"] = "beyond_noise"
    # Run the backtest after scoring and link it from the run report.
    backtest: bool = False


class Config(_Section):
    """The whole configuration of a run."""

    data_dir: Path = Path("data/demo")
    seed: int = 7
    source: Source = SyntheticSource()
    ingest: IngestConfig = IngestConfig()
    features: FeaturesConfig = FeaturesConfig()
    labels: LabelsConfig = LabelsConfig()
    split: SplitConfig = SplitConfig()
    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    validation: ValidationConfig = ValidationConfig()
    resampling: ResamplingConfig = ResamplingConfig()
    train: TrainConfig = TrainConfig()
    tune: TuneConfig = TuneConfig()
    score: ScoreConfig = ScoreConfig()
    daily: DailyConfig = DailyConfig()
    backtest: BacktestConfig = BacktestConfig()
    ray: RayConfig = RayConfig()
    storage: StorageConfig = StorageConfig()

    @model_validator(mode="before")
    @classmethod
    def _data_dir_uri(cls, raw: Any) -> Any:
        """``data_dir = "s3://..."`` means ``storage.uri``, with a local working copy."""
        if not isinstance(raw, dict) or not is_object_store_uri(raw.get("data_dir")):
            return raw
        raw = dict(raw)
        uri = str(raw.pop("data_dir")).rstrip("/")
        storage = dict(raw.get("storage") or {})
        if storage.get("uri") not in (None, uri):
            msg = (
                f"data_dir {uri!r} and storage.uri {storage['uri']!r} name two object stores; "
                "give one"
            )
            raise ValueError(msg)
        storage["uri"] = uri
        work = storage.get("work_dir")
        if work is None:
            import tempfile

            rest = uri.partition("://")[2]
            work = Path(tempfile.gettempdir()) / "longtail-work" / rest
        raw["storage"], raw["data_dir"] = storage, work
        return raw


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        # Discriminated unions put the tag in the location; drop it for readability.
        loc = loc.replace("source.synthetic", "source").replace("source.generic", "source")
        loc = loc.replace("source.retailrocket", "source")
        got = err.get("input")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key (value {got!r})")
        elif err["type"] == "missing":
            lines.append(f"{loc}: required key is missing")
        else:
            lines.append(f"{loc or '<top>'}: {msg} (got {got!r})")
    return f"config {path}: " + "; ".join(lines)


def load_config(path: str | Path, *, data_dir: str | Path | None = None) -> Config:
    """Load and validate a TOML configuration file.

    Parameters
    ----------
    path
        The TOML file.
    data_dir
        Overrides ``data_dir`` from the file (the jobs' ``--data-dir``).

    Returns
    -------
    Config
        The frozen configuration. Relative paths in ``source`` are resolved
        against the directory of the config file.

    Raises
    ------
    ConfigError
        When the file is missing, is not UTF-8 TOML, has no ``[source]`` (an
        empty file included), or a key or value is wrong (strategy, loss and
        objective names included); the message names the file, the key and the
        bad value.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"config file not found: {path}"
        raise ConfigError(msg)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        msg = f"config {path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at {exc.start})"
        raise ConfigError(msg) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"config {path}: not valid TOML: {exc}"
        raise ConfigError(msg) from exc
    said = set(raw)
    if data_dir is not None:
        raw["data_dir"] = data_dir if is_object_store_uri(data_dir) else str(Path(data_dir))
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from exc
    # An empty or truncated file must not mean "the synthetic demo" (its ingest
    # would replace a real data dir's tables): the source is always explicit.
    if "source" not in said:
        what = "is empty" if not said else "has no [source] section"
        msg = (
            f"config {path} {what}: say where the events come from "
            "(the synthetic demo is jobs/configs/demo.toml)"
        )
        raise ConfigError(msg)
    return _resolve_paths(cfg, base=path.parent)


def _resolve_paths(cfg: Config, *, base: Path) -> Config:
    src = cfg.source
    if isinstance(src, RetailRocketSource) and not src.path.is_absolute():
        src = src.model_copy(update={"path": (base / src.path).resolve()})
    elif isinstance(src, GenericSource) and not src.events.is_absolute():
        src = src.model_copy(update={"events": (base / src.events).resolve()})
    return cfg.model_copy(update={"source": src})


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build a :class:`Config` from a mapping (tests and notebooks).

    Raises
    ------
    ConfigError
        As :func:`load_config`.
    """
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(Path("<dict>"), exc)) from exc
