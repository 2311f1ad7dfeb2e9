"""The recommendations partition: Parquet plus ``_manifest.json``, swapped in whole.

A partition folder holds nothing else (reports live under ``reports/scoring/``),
so any Parquet reader (``pyarrow.dataset``, a hive-partitioned
``pl.scan_parquet``) can read ``recommendations/`` as one dataset.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Final

import polars as pl

from longtail import schema as S
from longtail.errors import StageError
from longtail.io import atomic_dir, write_json
from longtail.paths import RecommendationPartition

__all__ = ["RECOMMENDATIONS", "check_lists", "write_partition"]

RECOMMENDATIONS: Final[dict[str, pl.DataType]] = {
    S.USER_ID: pl.Int64(),
    S.RANK: pl.UInt32(),
    S.ITEM_ID: pl.Int64(),
    S.SCORE: pl.Float64(),
    S.PROBABILITY: pl.Float64(),
    S.MODEL_VERSION: pl.String(),
    S.STRATEGY: pl.String(),
    S.FEATURE_SERVICE: pl.String(),
    S.GENERATED_AT: S.TIME,
}


def check_lists(recs: pl.DataFrame, expected_users: pl.Series, *, k: int) -> dict[str, int]:
    """Check the lists' invariants and count short lists.

    Every expected user appears, no other user does, ranks run 1..n without gaps,
    no item repeats in a list, at most ``k`` items, probabilities in [0, 1].

    Returns
    -------
    dict
        ``users_expected``, ``users_written``, ``rows``, ``short_lists``.

    Raises
    ------
    StageError
        An invariant does not hold (a bug upstream; nothing is written).
    """
    per_user = recs.group_by(S.USER_ID).agg(
        pl.len().alias("n"),
        pl.col(S.ITEM_ID).n_unique().alias("distinct"),
        pl.col(S.RANK).max().alias("max_rank"),
        pl.col(S.RANK).min().alias("min_rank"),
    )
    expected = expected_users.unique()
    missing = expected.filter(~expected.is_in(per_user[S.USER_ID].implode()))
    extra = per_user.filter(~pl.col(S.USER_ID).is_in(expected.implode()))
    problems = []
    if missing.len():
        problems.append(
            f"{missing.len()} expected users have no list (e.g. {missing[:3].to_list()})"
        )
    if extra.height:
        problems.append(f"{extra.height} users were not expected")
    if per_user.filter(pl.col("distinct") != pl.col("n")).height:
        problems.append("an item repeats within a list")
    if per_user.filter((pl.col("max_rank") != pl.col("n")) | (pl.col("min_rank") != 1)).height:
        problems.append("ranks are not 1..n")
    if per_user.filter(pl.col("n") > k).height:
        problems.append(f"a list is longer than k={k}")
    p = recs[S.PROBABILITY]
    if p.null_count() or (p < 0).any() or (p > 1).any():
        problems.append("a probability is outside [0, 1]")
    if problems:
        raise StageError("recommendations fail their checks: " + "; ".join(problems))
    return {
        "users_expected": expected.len(),
        "users_written": per_user.height,
        "rows": recs.height,
        "short_lists": per_user.filter(pl.col("n") < k).height,
    }


def write_partition(
    recs: pl.DataFrame,
    target: Path,
    *,
    expected_users: pl.Series,
    k: int,
    manifest: dict[str, Any],
    staging: Path | None = None,
    fail_after_write: bool = False,
) -> dict[str, Any]:
    """Check and write one date's lists to ``target`` atomically.

    The Parquet file and ``_manifest.json`` are written into a temporary folder
    outside the dataset folder, which then replaces ``target`` whole
    (:func:`longtail.io.atomic_dir`): readers see the previous partition or the
    new one, never a mix, never none, and a crash leaves the previous partition
    intact with no temporary copy inside the dataset. The replaced partition
    is parked in ``staging`` until the next job start removes it.

    Parameters
    ----------
    recs
        The lists, in the :data:`RECOMMENDATIONS` schema.
    target
        ``DATA_DIR/recommendations/date=YYYY-MM-DD``.
    expected_users
        Users that must each have a list.
    k
        List length.
    manifest
        Extra manifest fields (model version, duration, ...).
    staging
        Where the temporary folder lives (default: ``.staging`` beside the
        dataset folder, e.g. ``DATA_DIR/.staging``); same file system as ``target``.
    fail_after_write
        Raise after writing, before the swap (tests use it to inject a crash).

    Returns
    -------
    dict
        The manifest written.
    """
    recs = S.conform(recs.sort(S.USER_ID, S.RANK), RECOMMENDATIONS, table="recommendations")
    counts = check_lists(recs, expected_users, k=k)
    full = {**manifest, **counts, "k": k, "written_at": dt.datetime.now(dt.UTC).isoformat()}
    staging = staging or target.parent.parent / ".staging"
    # Readers outside the jobs (serving) read partitions at any time: the old one
    # stays whole until the next job start deletes it.
    with atomic_dir(target, staging=staging, keep_old=True) as tmp:
        files = RecommendationPartition(tmp)
        recs.write_parquet(files.rows, statistics=True)
        write_json(full, files.manifest)
        if fail_after_write:
            msg = "injected crash before the swap"
            raise RuntimeError(msg)
    return full
