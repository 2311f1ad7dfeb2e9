"""Candidate items per user, from events strictly before the scoring time.

Five sources, merged in priority order and deduplicated:

1. ``history``: the user's own viewed and carted items not yet bought, by a
   recency-weighted count (a cart counts ``cart_weight`` views; half-life
   ``history_half_life_days``): on real shops most purchases follow earlier
   views of the same item;
2. ``coview``: items co-viewed (same user, same day) with the user's most recent
   items, by co-occurrence count (item-item co-occurrence in Polars);
3. ``category``: the most viewed items of the user's top categories;
4. ``popular``: globally most viewed items;
5. ``tail``: a configured share of random tail items (exploration), seeded by
   the run seed and date so reruns give the same lists. The pool is every item
   seen before the scoring time outside head and torso, so items with no view in
   the window are reachable too.

Items the user already bought are excluded when configured. Each user gets at
most ``max_candidates``. Users without history (``cold_start``) get the popular
and tail sources only; this is their stated fallback.

Every candidate carries its *pair* features (:data:`PAIR_FEATURES`): what the
user did with this very item before the scoring time and which source offered
it. They are computed here, from the same events, for serving and for training
rows alike, so the ranker learns the value of a user's own history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import polars as pl
import scipy.sparse as sp

from longtail import schema as S

if TYPE_CHECKING:
    from longtail.config import ScoreConfig

__all__ = [
    "COVIEW_ITEMS_PER_CHUNK",
    "PAIR_FEATURES",
    "SOURCES",
    "USERS_PER_CHUNK",
    "CandidateConfig",
    "CandidatePlan",
    "CoviewIndex",
    "candidate_config",
    "generate_candidates",
]

SOURCES: Final = ("history", "coview", "category", "popular", "tail")
#: Users whose candidates are built at once (about 4M rows at 200 candidates each).
USERS_PER_CHUNK: Final = 20_000
#: Items whose co-view lists one sparse product builds (its pairs bound the peak).
COVIEW_ITEMS_PER_CHUNK: Final = 20_000
_PRIORITY: Final = {name: i for i, name in enumerate(SOURCES)}
PAIR_VIEWS: Final = "pair_views"
PAIR_CARTS: Final = "pair_carts"
PAIR_HOURS_SINCE: Final = "pair_hours_since_last"
PAIR_SOURCE: Final = tuple(f"pair_from_{name}" for name in SOURCES)
#: Dense features of a (user, candidate item) pair, as of the scoring time.
PAIR_FEATURES: Final = (PAIR_VIEWS, PAIR_CARTS, PAIR_HOURS_SINCE, *PAIR_SOURCE)


@dataclass(frozen=True)
class CandidateConfig:
    """Sizes of each source; built from ``ScoreConfig`` by the scoring job."""

    max_candidates: int = 200
    tail_share: float = 0.1
    exclude_purchased: bool = True
    history: int = 50
    history_half_life_days: float = 3.0
    cart_weight: float = 3.0
    recent_items: int = 5
    coview_per_item: int = 20
    top_categories: int = 3
    per_category: int = 50
    popular: int = 100
    window_days: int = 30


def candidate_config(score: ScoreConfig) -> CandidateConfig:
    """The candidate sizes of a run: the same for serving, training rows and the backtest."""
    return CandidateConfig(
        max_candidates=score.max_candidates,
        tail_share=score.tail_exploration_share,
        exclude_purchased=score.exclude_purchased,
    )


def _item_buckets(views: pl.DataFrame, *, head_share: float, torso_share: float) -> pl.DataFrame:
    counts = views.group_by(S.ITEM_ID).len("n").sort(["n", S.ITEM_ID], descending=[True, False])
    total = max(int(counts["n"].sum()), 1)
    return counts.with_columns(
        pl.when(pl.col("n").cum_sum() - pl.col("n") < head_share * total)
        .then(pl.lit("head"))
        .when(pl.col("n").cum_sum() - pl.col("n") < torso_share * total)
        .then(pl.lit("torso"))
        .otherwise(pl.lit("tail"))
        .alias("bucket")
    )


def _user_types(past: pl.DataFrame, user_frame: pl.DataFrame) -> pl.DataFrame:
    """``user_id, fallback``: ``history`` for users with a view before, else ``cold_start``."""
    known = (
        past.filter(pl.col(S.EVENT_TYPE) == "view")
        .join(user_frame, on=S.USER_ID, how="semi")
        .select(S.USER_ID)
        .unique()
    )
    return user_frame.join(
        known.with_columns(pl.lit("history").alias("fallback")), on=S.USER_ID, how="left"
    ).with_columns(pl.col("fallback").fill_null("cold_start"))


def _by_priority(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The sources' rows, each (user, item) once from its highest-priority source."""
    return (
        pl.concat([p.select(S.USER_ID, S.ITEM_ID, "strength", "source") for p in parts])
        .with_columns(pl.col("source").replace_strict(_PRIORITY, return_dtype=pl.Int8).alias("_p"))
        .sort([S.USER_ID, "_p", "strength", S.ITEM_ID], descending=[False, False, True, False])
        .unique([S.USER_ID, S.ITEM_ID], keep="first", maintain_order=True)
    )


def _history(touched: pl.DataFrame, *, as_of: dt.datetime, cfg: CandidateConfig) -> pl.DataFrame:
    """Source 1, history: the user's own viewed and carted items, recency-weighted.

    ``touched`` holds the window's views and carts of the users to serve.
    """
    age_days = (pl.lit(as_of) - pl.col(S.EVENT_TIME)).dt.total_seconds() / 86_400.0
    weight = pl.when(pl.col(S.EVENT_TYPE) == "cart").then(cfg.cart_weight).otherwise(1.0)
    return (
        touched.group_by(S.USER_ID, S.ITEM_ID)
        .agg(
            (weight * (-age_days * np.log(2) / cfg.history_half_life_days).exp())
            .sum()
            .alias("strength")
        )
        .sort([S.USER_ID, "strength", S.ITEM_ID], descending=[True, True, False])
        .group_by(S.USER_ID, maintain_order=True)
        .head(cfg.history)
        .with_columns(pl.lit("history").alias("source"))
    )


_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_EMPTY_PAIRS: Final = pl.DataFrame(
    schema={S.ITEM_ID: pl.Int64, "item_id_b": pl.Int64, "co": pl.UInt32}
)


class CoviewIndex:
    """Which items each user viewed on each day, as a sparse 0/1 (user-day x item) matrix.

    Co-view counts are ``X.T @ X`` off the diagonal: for items a and b, the
    number of (user, day) on which the user viewed both, which is what a
    self-join of the daily views on (user, day) counts. Rows are day-major, so
    the views of whole days ``[start, end)`` are one contiguous slice of rows: the
    training set's 40 snapshot times build one index from the log before the
    cutoff and slice a 30-day window out of it each, instead of a self-join of
    the window's views per time (33 s of a 40 s replay at 10M events).

    Parameters
    ----------
    views
        ``user_id, item_id, event_time`` of view events (other columns ignored).
    """

    def __init__(self, views: pl.DataFrame) -> None:
        day = views[S.EVENT_TIME].dt.date().cast(pl.Int32).to_numpy().astype(np.int64)
        users, user_col = np.unique(views[S.USER_ID].to_numpy(), return_inverse=True)
        self.items, item_col = np.unique(views[S.ITEM_ID].to_numpy(), return_inverse=True)
        self.first_day = int(day.min()) if day.size else 0
        self.n_users = users.size
        self.n_days = int(day.max()) + 1 - self.first_day if day.size else 0
        rows = (day - self.first_day) * self.n_users + user_col
        x = sp.csr_matrix(
            (np.ones(rows.size, np.int32), (rows, item_col)),
            shape=(self.n_days * self.n_users, self.items.size),
        )
        x.sum_duplicates()
        x.data[:] = 1  # a (user, day, item) counts once however often it was viewed
        self.matrix = x

    def pairs(
        self,
        *,
        cfg: CandidateConfig,
        start: dt.date | None = None,
        end: dt.date | None = None,
        items: pl.Series | None = None,
        items_per_chunk: int = COVIEW_ITEMS_PER_CHUNK,
    ) -> pl.DataFrame:
        """Item -> its ``coview_per_item`` most co-viewed items over the days ``[start, end)``.

        Only the items of ``items`` (every item when ``None``) get their list: a
        training snapshot's few hundred users need the lists of a few thousand
        items. The product runs ``items_per_chunk`` of them at a time, so its peak
        is a chunk's pairs (an item's list depends on its own column alone).

        Returns
        -------
        polars.DataFrame
            ``item_id, item_id_b, co`` (UInt32), by item, then co descending, then
            ``item_id_b``.
        """
        first = self.first_day + _EPOCH_ORDINAL
        lo = 0 if start is None else max(start.toordinal() - first, 0)
        hi = self.n_days if end is None else min(end.toordinal() - first, self.n_days)
        window = self.matrix[lo * self.n_users : max(hi, lo) * self.n_users]
        cols = np.arange(self.items.size)
        if items is not None:
            cols = np.flatnonzero(np.isin(self.items, items.to_numpy()))
        by_item = window.tocsc()
        parts = [_EMPTY_PAIRS]
        for offset in range(0, cols.size, items_per_chunk):
            chunk = cols[offset : offset + items_per_chunk]
            co = (by_item[:, chunk].T.tocsr() @ window).tocoo()
            a, b = self.items[chunk][co.row], self.items[co.col]
            off_diagonal = a != b
            parts.append(
                pl.DataFrame(
                    {
                        S.ITEM_ID: a[off_diagonal],
                        "item_id_b": b[off_diagonal],
                        "co": co.data[off_diagonal].astype(np.uint32),
                    },
                    schema=_EMPTY_PAIRS.schema,
                )
                .sort([S.ITEM_ID, "co", "item_id_b"], descending=[False, True, False])
                .group_by(S.ITEM_ID, maintain_order=True)
                .head(cfg.coview_per_item)
            )
        return pl.concat(parts)


def _last_items(
    past: pl.DataFrame, user_frame: pl.DataFrame, *, cfg: CandidateConfig
) -> pl.DataFrame:
    """``user_id, item_id``: each user's ``recent_items`` most recently viewed distinct items."""
    return (
        past.filter(pl.col(S.EVENT_TYPE) == "view")
        # Only the served users' views: a training snapshot serves a few hundred of
        # them, and sorting every user's views at every snapshot time dominated.
        .join(user_frame, on=S.USER_ID, how="semi")
        .sort(S.EVENT_TIME)
        .group_by(S.USER_ID)
        .agg(pl.col(S.ITEM_ID).unique(maintain_order=True).reverse().head(cfg.recent_items))
        .explode(S.ITEM_ID)
    )


def _coview(
    last_items: pl.DataFrame, pairs: pl.DataFrame, user_frame: pl.DataFrame
) -> pl.DataFrame:
    """Source 2, co-view: items seen on the same day as the user's last viewed items."""
    return (
        last_items.join(user_frame, on=S.USER_ID, how="semi")
        .join(pairs, on=S.ITEM_ID)
        .group_by(S.USER_ID, pl.col("item_id_b").alias(S.ITEM_ID))
        .agg(pl.col("co").sum().cast(pl.Float64).alias("strength"))
        .with_columns(pl.lit("coview").alias("source"))
    )


def _category_tables(
    items: pl.DataFrame,
    views: pl.DataFrame,
    user_frame: pl.DataFrame,
    *,
    as_of: dt.datetime,
    cfg: CandidateConfig,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The top categories of the users of ``user_frame``, and each category's most viewed items."""
    # Item -> current category (latest version before as_of).
    item_cat = (
        items.filter(pl.col(S.VALID_FROM) < as_of)
        .sort(S.VALID_FROM)
        .group_by(S.ITEM_ID)
        .agg(pl.col(S.CATEGORY_ID).drop_nulls().last())
    )
    cat_views = views.join(item_cat, on=S.ITEM_ID, how="inner")
    top_cats = (
        cat_views.join(user_frame, on=S.USER_ID, how="semi")
        .group_by(S.USER_ID, S.CATEGORY_ID)
        .len("n")
        .sort(["n", S.CATEGORY_ID], descending=[True, False])
        .group_by(S.USER_ID, maintain_order=True)
        .head(cfg.top_categories)
    )
    cat_popular = (
        cat_views.group_by(S.CATEGORY_ID, S.ITEM_ID)
        .len("m")
        .sort(["m", S.ITEM_ID], descending=[True, False])
        .group_by(S.CATEGORY_ID, maintain_order=True)
        .head(cfg.per_category)
    )
    return top_cats, cat_popular


def _category(
    top_cats: pl.DataFrame, cat_popular: pl.DataFrame, user_frame: pl.DataFrame
) -> pl.DataFrame:
    """Source 3, category: the user's top categories -> their most viewed items."""
    return (
        user_frame.join(top_cats, on=S.USER_ID)
        .join(cat_popular, on=S.CATEGORY_ID)
        .select(
            S.USER_ID,
            S.ITEM_ID,
            (pl.col("n") * pl.col("m")).cast(pl.Float64).alias("strength"),
            pl.lit("category").alias("source"),
        )
    )


def _popular(
    buckets: pl.DataFrame, user_frame: pl.DataFrame, *, cfg: CandidateConfig
) -> pl.DataFrame:
    """Source 4, popular: the window's most viewed items, for every user."""
    popular = buckets.head(cfg.popular).select(
        S.ITEM_ID, pl.col("n").cast(pl.Float64).alias("strength")
    )
    return user_frame.join(popular, how="cross").with_columns(pl.lit("popular").alias("source"))


def _tail_pool(past: pl.DataFrame, buckets: pl.DataFrame) -> np.ndarray:
    """Every item seen before the scoring time outside the window's head and torso, sorted."""
    seen_items = past.select(S.ITEM_ID).unique()
    not_tail = buckets.filter(pl.col("bucket") != "tail").select(S.ITEM_ID)
    pool: np.ndarray = (
        seen_items.join(not_tail, on=S.ITEM_ID, how="anti")[S.ITEM_ID].sort().to_numpy()
    )
    return pool


def _tail(
    user_ids: np.ndarray,
    draws: np.ndarray,
    *,
    listed: pl.DataFrame,
    bought: pl.DataFrame | None,
    n_tail: int,
) -> pl.DataFrame:
    """Source 5, tail exploration: the first ``n_tail`` usable of each user's random draws.

    ``draws`` holds one row of tail items per user of ``user_ids`` (twice what is
    needed, with replacement); repeats and the (user, item) pairs in ``listed`` or
    ``bought`` are dropped.
    """
    k = draws.shape[1]
    tail = pl.DataFrame(
        {
            S.USER_ID: np.repeat(user_ids, k),
            S.ITEM_ID: draws.ravel(),
            "strength": np.zeros(user_ids.size * k),
        }
    ).with_columns(pl.lit("tail").alias("source"), pl.lit(_PRIORITY["tail"], pl.Int8).alias("_p"))
    tail = tail.unique([S.USER_ID, S.ITEM_ID], keep="first", maintain_order=True).join(
        listed.select(S.USER_ID, S.ITEM_ID), on=[S.USER_ID, S.ITEM_ID], how="anti"
    )
    if bought is not None:
        tail = tail.join(bought, on=[S.USER_ID, S.ITEM_ID], how="anti")
    return tail.group_by(S.USER_ID, maintain_order=True).head(n_tail)


class CandidatePlan:
    """Candidates for many users, built one chunk of users at a time.

    What every user's candidates share (the co-view pairs, the category tables,
    the popularity buckets, purchases, the tail pool and every user's tail draws)
    is computed once; iterating yields the candidates of ``users_per_chunk`` users
    at a time, in user order, so the caller holds one chunk's rows, not every
    served user's (33M rows at 10M events). A user's candidates depend on that
    user alone given the shared tables, and the tail draws are made for all users
    at once, so the concatenated chunks equal one chunk of everyone.

    Parameters
    ----------
    events, items
        Canonical tables.
    users
        The users to serve (Int64); users absent from ``events`` are cold starts.
    as_of
        Scoring time (UTC); only events before it are used.
    cfg
        Source sizes.
    seed
        Seed of the tail exploration draw (with the date of ``as_of``).
    head_share, torso_share
        Cumulative view shares that bound head and torso (as the features use).
    users_per_chunk
        Users per yielded frame.
    coview
        An index of at least every view of the window (built once by a caller that
        replays many 00:00 UTC times of one log); by default one of this window's
        views.

    Raises
    ------
    ValueError
        ``users_per_chunk`` below 1, or ``coview`` given for an ``as_of`` that is
        not 00:00 UTC (the index holds whole days).
    """

    def __init__(
        self,
        events: pl.DataFrame,
        items: pl.DataFrame,
        users: pl.Series,
        *,
        as_of: dt.datetime,
        cfg: CandidateConfig,
        seed: int,
        head_share: float = 0.5,
        torso_share: float = 0.8,
        users_per_chunk: int = USERS_PER_CHUNK,
        coview: CoviewIndex | None = None,
    ) -> None:
        if users_per_chunk < 1:
            msg = f"users_per_chunk must be >= 1. Got {users_per_chunk!r} instead."
            raise ValueError(msg)
        if coview is not None and as_of.astimezone(dt.UTC).time() != dt.time():
            msg = f"a shared co-view index holds whole days: as_of must be 00:00 UTC, not {as_of}."
            raise ValueError(msg)
        self.cfg, self.as_of, self.users_per_chunk = cfg, as_of, users_per_chunk
        self.start = as_of - dt.timedelta(days=cfg.window_days)
        self.past = events.filter(pl.col(S.EVENT_TIME) < as_of)
        views = self.past.filter(
            (pl.col(S.EVENT_TIME) >= self.start) & (pl.col(S.EVENT_TYPE) == "view")
        )
        # In the users' given order: the row of each user's tail draws.
        frame = pl.DataFrame({S.USER_ID: users.cast(pl.Int64)}).unique(maintain_order=True)
        #: ``user_id, fallback``: ``history`` or ``cold_start`` per user.
        self.user_types = _user_types(self.past, frame)
        self.users = frame.with_row_index("_row").sort(S.USER_ID)
        self.buckets = _item_buckets(views, head_share=head_share, torso_share=torso_share)
        # Stable, so each user's rows keep the log's order (and their sums their bits).
        self.touched = (
            self.past.filter(
                (pl.col(S.EVENT_TIME) >= self.start) & (pl.col(S.EVENT_TYPE) != "purchase")
            )
            .join(frame, on=S.USER_ID, how="semi")
            .sort(S.USER_ID, maintain_order=True)
        )
        self.last_items = _last_items(self.past, frame, cfg=cfg)
        wanted = self.last_items[S.ITEM_ID]
        if coview is None:
            self.pairs = CoviewIndex(views).pairs(cfg=cfg, items=wanted)
        else:
            self.pairs = coview.pairs(
                cfg=cfg, start=self.start.date(), end=as_of.date(), items=wanted
            )
        self.top_cats, self.cat_popular = _category_tables(
            items, views, frame, as_of=as_of, cfg=cfg
        )
        self.bought = (
            self.past.filter(pl.col(S.EVENT_TYPE) == "purchase")
            .select(S.USER_ID, S.ITEM_ID)
            .unique()
            if cfg.exclude_purchased
            else None
        )
        self.n_tail = round(cfg.max_candidates * cfg.tail_share)
        pool = _tail_pool(self.past, self.buckets)
        self.draws: np.ndarray | None = None
        if self.n_tail > 0 and pool.size:
            rng = np.random.default_rng([seed, as_of.toordinal()])
            # Twice what is needed (with replacement, vectorized) so that after
            # removing repeats and items already listed, n_tail usually remain.
            self.draws = pool[rng.integers(0, pool.size, (frame.height, self.n_tail * 2))]

    def __iter__(self) -> Iterator[pl.DataFrame]:
        """The candidates of each chunk of users (sorted by user), with pair features."""
        # No users still yields one (empty) frame with every column.
        for offset in range(0, max(self.users.height, 1), self.users_per_chunk):
            yield self._chunk(self.users.slice(offset, self.users_per_chunk))

    def _chunk(self, part: pl.DataFrame) -> pl.DataFrame:
        cfg = self.cfg
        user_frame = part.select(S.USER_ID)
        # The window's views and carts of this chunk's users (a user range of the
        # user-sorted table): what history and the pair features read, without a
        # scan of the whole log per chunk.
        users = self.touched[S.USER_ID]
        lo = users.search_sorted(part[S.USER_ID][0], "left") if part.height else 0
        hi = users.search_sorted(part[S.USER_ID][-1], "right") if part.height else 0
        touched = self.touched.slice(lo, hi - lo)
        parts = [
            _history(touched, as_of=self.as_of, cfg=cfg),
            _coview(self.last_items, self.pairs, user_frame),
            _category(self.top_cats, self.cat_popular, user_frame),
            _popular(self.buckets, user_frame, cfg=cfg),
        ]
        merged = _by_priority(parts)
        if self.bought is not None:
            merged = merged.join(self.bought, on=[S.USER_ID, S.ITEM_ID], how="anti")
        merged = merged.group_by(S.USER_ID, maintain_order=True).head(
            cfg.max_candidates - self.n_tail
        )
        if self.draws is not None:
            tail = _tail(
                part[S.USER_ID].to_numpy(),
                self.draws[part["_row"].to_numpy()],
                listed=merged,
                bought=self.bought,
                n_tail=self.n_tail,
            )
            merged = pl.concat([merged, tail.select(merged.columns)])
        candidates = (
            merged.sort(
                [S.USER_ID, "_p", "strength", S.ITEM_ID], descending=[False, False, True, False]
            )
            .group_by(S.USER_ID, maintain_order=True)
            .head(cfg.max_candidates)
            .select(S.USER_ID, S.ITEM_ID, "source")
        )
        return _with_pair_features(candidates, touched, as_of=self.as_of, start=self.start)


def generate_candidates(
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.Series,
    *,
    as_of: dt.datetime,
    cfg: CandidateConfig,
    seed: int,
    head_share: float = 0.5,
    torso_share: float = 0.8,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Build candidates for ``users`` from events strictly before ``as_of``, all at once.

    The parameters are :class:`CandidatePlan`'s; a caller that can take the
    candidates a chunk of users at a time iterates a plan instead.

    Returns
    -------
    candidates
        ``user_id, item_id, source`` and :data:`PAIR_FEATURES`, at most
        ``max_candidates`` per user, no duplicate (user, item), sorted by user then
        source priority.
    user_types
        ``user_id, fallback`` with ``history`` or ``cold_start`` per user.
    """
    plan = CandidatePlan(
        events, items, users, as_of=as_of, cfg=cfg, seed=seed,
        head_share=head_share, torso_share=torso_share,
    )  # fmt: skip
    chunks = list(plan)
    candidates = chunks[0] if len(chunks) == 1 else pl.concat(chunks)
    return candidates, plan.user_types


def _with_pair_features(
    candidates: pl.DataFrame, touched: pl.DataFrame, *, as_of: dt.datetime, start: dt.datetime
) -> pl.DataFrame:
    """Add :data:`PAIR_FEATURES` to ``candidates``, from ``touched`` (the window's views and carts).

    The user's views and carts of the item in the window, hours since the last of
    them (the window's length when none), and a 0/1 column per source.
    """
    window_hours = (as_of - start).total_seconds() / 3600.0
    stats = (
        touched.join(candidates.select(S.USER_ID, S.ITEM_ID), on=[S.USER_ID, S.ITEM_ID], how="semi")
        .group_by(S.USER_ID, S.ITEM_ID)
        .agg(
            (pl.col(S.EVENT_TYPE) == "view").sum().cast(pl.Float64).alias(PAIR_VIEWS),
            (pl.col(S.EVENT_TYPE) == "cart").sum().cast(pl.Float64).alias(PAIR_CARTS),
            ((pl.lit(as_of) - pl.col(S.EVENT_TIME).max()).dt.total_seconds() / 3600.0).alias(
                PAIR_HOURS_SINCE
            ),
        )
    )
    return candidates.join(
        stats, on=[S.USER_ID, S.ITEM_ID], how="left", maintain_order="left"
    ).with_columns(
        pl.col(PAIR_VIEWS, PAIR_CARTS).fill_null(0.0),
        pl.col(PAIR_HOURS_SINCE).fill_null(window_hours),
        *(
            (pl.col("source") == name).cast(pl.Float64).alias(col)
            for name, col in zip(SOURCES, PAIR_SOURCE, strict=True)
        ),
    )
