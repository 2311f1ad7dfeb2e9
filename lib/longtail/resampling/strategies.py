"""Imbalance strategies: imbalanced-learn samplers behind a Polars-in, Polars-out contract.

Only the dense features (:func:`longtail.schema.dense_feature_columns`) are given to
imbalanced-learn. Ids, categoricals, the event time and the split are never
interpolated: every output row is either a real input row (taken whole, nulls
included) or a synthetic row whose dense features come from the sampler and whose
other columns (ids, category, popularity bucket, event time, and the null pattern
of the dense features) come from its nearest real row of the same class, its
*donor*. Nulls are imputed with the group's median for the neighbour search only.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import polars as pl
from imblearn.combine import SMOTETomek
from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler
from imblearn.under_sampling import ClusterCentroids, RandomUnderSampler, TomekLinks
from numpy.typing import NDArray
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.impute import SimpleImputer
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from longtail.errors import ConfigError, StageError
from longtail.schema import LABEL, SPLIT, dense_feature_columns

__all__ = ["STRATEGIES", "FrameSampler", "check_params", "refuse_non_train_rows"]

log = logging.getLogger(__name__)

#: Strategy name -> imbalanced-learn class (``None``: leave the rows as they are).
STRATEGIES: Final[Mapping[str, type[Any] | None]] = {
    "none": None,
    "random_under": RandomUnderSampler,
    "random_over": RandomOverSampler,
    "smote": SMOTE,
    "borderline_smote": BorderlineSMOTE,
    "adasyn": ADASYN,
    "tomek": TomekLinks,
    "cluster_centroids": ClusterCentroids,
    "smote_tomek": SMOTETomek,
}

# Neighbour-based samplers need more minority rows than neighbours; fewer and the
# group is passed through unchanged (the sampling report shows its rate of 1).
_NEIGHBOUR_PARAM: Final[Mapping[str, tuple[str, int]]] = {
    "smote": ("k_neighbors", 5),
    "borderline_smote": ("k_neighbors", 5),
    "adasyn": ("n_neighbors", 5),
    "smote_tomek": ("k_neighbors", 5),
}
# ClusterCentroids' estimator is an object; from a config file it is named instead.
_CLUSTER_ESTIMATORS: Final[Mapping[str, Callable[[int], Any]]] = {
    "minibatch_kmeans": lambda seed: MiniBatchKMeans(n_init=3, random_state=seed),
    "kmeans": lambda seed: KMeans(n_init=1, random_state=seed),
}


def refuse_non_train_rows(frame: pl.DataFrame) -> None:
    """Raise unless every row of ``frame`` belongs to the train split.

    Frames without a ``split`` column are taken as train rows (the train split file).

    Raises
    ------
    StageError
        Some rows are validation or test rows (or have a null split).
    """
    if SPLIT not in frame.columns:
        return
    bad = frame.filter(pl.col(SPLIT).ne_missing("train"))
    if bad.height:
        values = sorted(str(v) for v in bad.get_column(SPLIT).unique().to_list())
        msg = (
            f"only train rows may be resampled; {bad.height} row(s) have split in "
            f"{values}. Validation and test rows must keep the true distribution. "
            f"Got split values {values!r} instead."
        )
        raise StageError(msg)


def _valid_keys(strategy: str) -> list[str]:
    cls = STRATEGIES[strategy]
    return [] if cls is None else sorted(cls().get_params(deep=False))


def check_params(strategy: str, params: Mapping[str, Any]) -> None:
    """Check a strategy name and its imbalanced-learn parameters, before any data is read.

    Raises
    ------
    ConfigError
        Unknown strategy, unknown parameter key, or a value imbalanced-learn refuses;
        the message names the strategy and the key.
    """
    if strategy not in STRATEGIES:
        msg = f"resampling.strategy must be one of {sorted(STRATEGIES)}. Got {strategy!r} instead."
        raise ConfigError(msg)
    valid = _valid_keys(strategy)
    for key in params:
        if key not in valid:
            msg = (
                f"resampling.params: strategy {strategy!r} has no parameter {key!r}; "
                f"valid keys are {valid}. Got {key!r} instead."
            )
            raise ConfigError(msg)
    if strategy == "none":
        return
    _build(strategy, dict(params), seed=0)._validate_params()


def _build(strategy: str, params: dict[str, Any], *, seed: int) -> Any:
    """Return the imbalanced-learn sampler for ``strategy``, or raise ConfigError."""
    cls = STRATEGIES[strategy]
    if cls is None:
        msg = f"strategy {strategy!r} has no imbalanced-learn sampler. Got {strategy!r} instead."
        raise StageError(msg)
    kwargs = dict(params)
    if "random_state" in cls().get_params(deep=False):
        kwargs["random_state"] = seed
    if strategy == "cluster_centroids":
        name = kwargs.get("estimator", "minibatch_kmeans")
        if name not in _CLUSTER_ESTIMATORS:
            msg = (
                f"resampling.params: strategy 'cluster_centroids' key 'estimator' must be "
                f"one of {sorted(_CLUSTER_ESTIMATORS)}. Got {name!r} instead."
            )
            raise ConfigError(msg)
        kwargs["estimator"] = _CLUSTER_ESTIMATORS[name](seed)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        msg = f"resampling.params for strategy {strategy!r} are invalid: {exc}. Got {params!r}."
        raise ConfigError(msg) from exc


def group_seed(seed: int, group: str) -> int:
    """Return a seed for one group that does not depend on the order groups are processed in."""
    return (seed * 1_000_003 + zlib.crc32(group.encode())) % (2**32)


@dataclass(frozen=True)
class _Matrix:
    values: NDArray[np.float64]  # imputed and standardized
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]


def _feature_matrix(frame: pl.DataFrame, columns: list[str]) -> _Matrix:
    raw = frame.select(pl.col(c).cast(pl.Float64) for c in columns)
    values = raw.to_numpy().astype(np.float64, copy=False)  # nulls become NaN
    # Column medians (0.0 for an all-null column), then zero mean and unit variance
    # (population std; a constant column keeps scale 1).
    values = SimpleImputer(strategy="median", keep_empty_features=True).fit_transform(values)
    scaler = StandardScaler().fit(values)
    return _Matrix(
        values=np.asarray(scaler.transform(values), dtype=np.float64),
        mean=np.asarray(scaler.mean_, dtype=np.float64),
        scale=np.asarray(scaler.scale_, dtype=np.float64),
    )


class FrameSampler:
    """An imbalance strategy applied to one Polars frame of train rows.

    Parameters
    ----------
    strategy
        One of :data:`STRATEGIES`.
    params
        Keyword arguments of the imbalanced-learn sampler (``sampling_strategy``,
        ``k_neighbors``, ...). ``random_state`` is the seed of the sampler; the
        ``seed`` argument is used when it is absent. For ``cluster_centroids``,
        ``estimator`` names the clusterer: ``"minibatch_kmeans"`` (default) or ``"kmeans"``.
    seed
        Seed used when ``params`` has no ``random_state``.

    Attributes
    ----------
    n_synthetic_
        After :meth:`fit_resample`: rows created per class, ``{0: k0, 1: k1}``.
    """

    def __init__(
        self, strategy: str, *, params: Mapping[str, Any] | None = None, seed: int = 0
    ) -> None:
        self.strategy = strategy
        self.params = dict(params or {})
        self.seed = seed

    @property
    def effective_seed(self) -> int:
        """The base seed: ``params["random_state"]`` when given, else ``seed``."""
        value = self.params.get("random_state", self.seed)
        if not isinstance(value, int):
            msg = (
                f"resampling.params: strategy {self.strategy!r} key 'random_state' must be "
                f"an int. Got {value!r} instead."
            )
            raise ConfigError(msg)
        return value

    def fit_resample(self, frame: pl.DataFrame, *, group: str = "") -> pl.DataFrame:
        """Resample ``frame``; same columns and dtypes out, rows as the strategy says.

        Parameters
        ----------
        frame
            Train rows with a 0/1 ``label`` column and dense ``user_*``/``item_*`` features.
        group
            Name of the group ``frame`` is; mixed into the seed so each group draws
            differently but reproducibly.

        Returns
        -------
        pl.DataFrame
            Original rows first (in input order, as selected), synthetic rows after.

        Raises
        ------
        ConfigError
            Unknown strategy or bad parameters.
        StageError
            Validation/test rows, no label column, labels other than 0/1, or no dense features.
        """
        check_params(self.strategy, self.params)
        refuse_non_train_rows(frame)
        if LABEL not in frame.columns:
            msg = f"frame has no {LABEL!r} column. Got columns {frame.columns!r} instead."
            raise StageError(msg)
        labels = frame.get_column(LABEL)
        bad = labels.filter(~labels.is_in([0, 1]) | labels.is_null())
        if bad.len():
            msg = f"{LABEL!r} must be 0 or 1. Got {bad.unique().to_list()!r} instead."
            raise StageError(msg)
        self.n_synthetic_ = {0: 0, 1: 0}
        if self.strategy == "none" or frame.height == 0:
            return frame
        columns = dense_feature_columns(frame)
        if not columns:
            msg = (
                f"strategy {self.strategy!r} needs dense user_*/item_* features. "
                f"Got columns {frame.columns!r} instead."
            )
            raise StageError(msg)
        y = labels.cast(pl.Int64).to_numpy()
        counts = np.bincount(y, minlength=2)
        if counts.min() == 0 or not self._enough_neighbours(int(counts.min())):
            log.warning(
                "group %r: classes %s too small for %r; rows passed through unchanged",
                group,
                counts.tolist(),
                self.strategy,
            )
            return frame
        out = self._fit_resample(frame, columns, y, seed=group_seed(self.effective_seed, group))
        return out

    def _enough_neighbours(self, n_minority: int) -> bool:
        if self.strategy not in _NEIGHBOUR_PARAM:
            return True
        key, default = _NEIGHBOUR_PARAM[self.strategy]
        k = self.params.get(key, default)
        return not isinstance(k, int) or n_minority > k

    def _sampler(self, seed: int) -> Any:
        return _build(self.strategy, self.params, seed=seed)

    def _fit_resample(
        self, frame: pl.DataFrame, columns: list[str], y: NDArray[np.int64], *, seed: int
    ) -> pl.DataFrame:
        matrix = _feature_matrix(frame, columns)
        x = matrix.values
        n = x.shape[0]
        if self.strategy == "smote_tomek":
            # SMOTE then Tomek links, as imblearn's SMOTETomek does, but in two steps
            # so the rows Tomek keeps can be traced back to input or synthetic rows.
            combo = self._sampler(seed)
            smote = combo.smote or SMOTE(
                sampling_strategy=combo.sampling_strategy, random_state=combo.random_state
            )
            tomek = combo.tomek or TomekLinks(sampling_strategy="all", n_jobs=combo.n_jobs)
            parents = _ParentLog(smote)
            x_s, y_s = smote.fit_resample(x, y)
            tomek.fit_resample(x_s, y_s)
            keep = np.asarray(tomek.sample_indices_)
            x_res, y_res = x_s[keep], y_s[keep]
            source = keep[keep < n].astype(np.int64)
            synthetic = np.flatnonzero(keep >= n).astype(np.int64)
            donors = parents.donors(x, y)
            kept_donors = None if donors is None else donors[keep[keep >= n] - n]
            return self._assemble(
                frame, columns, matrix, source, synthetic, x_res, y_res, kept_donors
            )
        sampler = self._sampler(seed)
        parents = _ParentLog(sampler)
        x_res, y_res = sampler.fit_resample(x, y)
        indices = getattr(sampler, "sample_indices_", None)
        if indices is not None:
            return frame[np.asarray(indices)]
        x_res, y_res = np.asarray(x_res), np.asarray(y_res)
        source, synthetic = _trace(x, y, x_res, y_res)
        appended = synthetic.size == 0 or np.array_equal(synthetic, np.arange(n, x_res.shape[0]))
        donors = parents.donors(x, y) if appended else None
        return self._assemble(frame, columns, matrix, source, synthetic, x_res, y_res, donors)

    def _assemble(
        self,
        frame: pl.DataFrame,
        columns: list[str],
        matrix: _Matrix,
        source: NDArray[np.int64],
        synthetic: NDArray[np.int64],
        x_res: NDArray[np.float64],
        y_res: NDArray[np.int64],
        known_donors: NDArray[np.int64] | None = None,
    ) -> pl.DataFrame:
        originals = frame[source]
        if synthetic.size == 0:
            return originals
        x_new = x_res[synthetic]
        y_new = y_res[synthetic]
        y_all = frame.get_column(LABEL).cast(pl.Int64).to_numpy()
        for cls in (0, 1):
            self.n_synthetic_[cls] = int(np.count_nonzero(y_new == cls))
        if known_donors is not None and known_donors.size == synthetic.size:
            donors = known_donors
        else:
            donors = _nearest_real_rows(matrix.values, y_all, x_new, y_new)
        values = x_new * matrix.scale + matrix.mean
        donor_rows = frame[donors]
        replaced = []
        for j, name in enumerate(columns):
            dtype = frame.schema[name]
            col = pl.Series(name, values[:, j])
            if dtype == pl.Boolean:
                col = col >= 0.5
            elif dtype.is_integer():
                col = col.round()
            keep_null = donor_rows.get_column(name).is_null()
            replaced.append(
                pl.when(pl.lit(keep_null)).then(None).otherwise(pl.lit(col)).cast(dtype).alias(name)
            )
        made = donor_rows.with_columns(replaced)
        made = made.with_columns(pl.Series(LABEL, y_new).cast(frame.schema[LABEL]))
        return pl.concat([originals, made], how="vertical")


def _trace(
    x: NDArray[np.float64],
    y: NDArray[np.int64],
    x_res: NDArray[np.float64],
    y_res: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Split sampler output into (input row index per real output row, synthetic positions).

    imblearn's SMOTE family returns the input first and new rows after; that case is
    checked and taken directly. Otherwise (ClusterCentroids) rows are matched exactly
    against the input rows of the same class, each input row used at most once.
    """
    n = x.shape[0]
    if x_res.shape[0] >= n and np.array_equal(x_res[:n], x) and np.array_equal(y_res[:n], y):
        return np.arange(n, dtype=np.int64), np.arange(n, x_res.shape[0], dtype=np.int64)
    free: dict[tuple[int, bytes], list[int]] = {}
    for i in range(n - 1, -1, -1):
        free.setdefault((int(y[i]), x[i].tobytes()), []).append(i)
    source: list[int] = []
    synthetic: list[int] = []
    for pos in range(x_res.shape[0]):
        stack = free.get((int(y_res[pos]), x_res[pos].tobytes()))
        if stack:
            source.append(stack.pop())
        else:
            synthetic.append(pos)
    return np.asarray(source, dtype=np.int64), np.asarray(synthetic, dtype=np.int64)


def _nearest_real_rows(
    values: NDArray[np.float64],
    y: NDArray[np.int64],
    x_new: NDArray[np.float64],
    y_new: NDArray[np.int64],
) -> NDArray[np.int64]:
    """For each synthetic row, the index of the nearest input row of its class (exact search)."""
    donors = np.empty(x_new.shape[0], dtype=np.int64)
    for cls in (0, 1):
        rows = np.flatnonzero(y_new == cls)
        if rows.size == 0:
            continue
        real = np.flatnonzero(y == cls)
        nn = NearestNeighbors(n_neighbors=1).fit(values[real])
        _, nearest = nn.kneighbors(x_new[rows])
        donors[rows] = real[nearest[:, 0]]
    return donors


class _ParentLog:
    """Records the two real rows each synthetic row of a SMOTE-family sampler lies between.

    SMOTE and Borderline-SMOTE make every new row in ``_generate_samples`` as
    ``base + step * (neighbour - base)``; wrapping that method on the instance
    records ``base``, ``neighbour`` and ``step``, so the donor (the nearer parent)
    is known without searching. Samplers that do not go through it (ADASYN,
    ClusterCentroids) record nothing and :meth:`donors` returns None.
    """

    def __init__(self, sampler: Any) -> None:
        self.calls: list[tuple[Any, Any, NDArray[np.int64], NDArray[np.int64], NDArray[Any], Any]]
        self.calls = []
        original = getattr(sampler, "_generate_samples", None)
        if original is None or isinstance(sampler, ADASYN):
            return

        def recording(
            x: Any, nn_data: Any, nn_num: Any, rows: Any, cols: Any, steps: Any,
            *args: Any, **kwargs: Any,
        ) -> Any:  # fmt: skip
            y_type = args[0] if args else kwargs.get("y_type")
            self.calls.append((x, nn_data, nn_num[rows, cols], rows, np.ravel(steps), y_type))
            return original(x, nn_data, nn_num, rows, cols, steps, *args, **kwargs)

        sampler._generate_samples = recording

    def donors(self, x: NDArray[np.float64], y: NDArray[np.int64]) -> NDArray[np.int64] | None:
        """Per synthetic row in output order, the input row index of its nearer parent.

        The neighbour is taken when the step is at least 0.5 and it is a real row
        of the base's class (Borderline-SMOTE-2 also steps towards other classes,
        by less than half); else the base. Returns None if nothing was recorded or
        a parent cannot be matched to an input row.
        """
        if not self.calls:
            return None
        out = []
        for base_rows, nn_data, neighbours, rows, steps, y_type in self.calls:
            real = np.flatnonzero(y == y_type)
            base = _locate(np.asarray(base_rows), x, real)[rows]
            if (base < 0).any():
                return None
            other = _locate(np.asarray(nn_data), x, real)[neighbours]
            out.append(np.where((steps >= 0.5) & (other >= 0), other, base))
        return np.concatenate(out)


def _locate(
    rows: NDArray[np.float64], x: NDArray[np.float64], real: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Index in ``x`` of each of ``rows`` among the rows ``real`` (one class), else -1.

    The samplers pass the class's rows as they are (SMOTE) or a subset of them
    (Borderline-SMOTE's danger rows), so the first check usually answers.
    """
    if rows.shape[0] == real.size and np.array_equal(rows, x[real]):
        return real
    index = {x[i].tobytes(): int(i) for i in real[::-1]}  # first occurrence wins
    return np.fromiter((index.get(r.tobytes(), -1) for r in rows), dtype=np.int64, count=len(rows))
