"""Helpers of tests/validation: small hand-made tables of every shape, clean, for 2024-03-10."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl

from longtail import schema as S
from longtail.config import Config, config_from_dict
from longtail.paths import Layout

DAY = dt.date(2024, 3, 10)
NOON = dt.datetime(2024, 3, 10, 12, tzinfo=dt.UTC)
MIDNIGHT = dt.datetime(2024, 3, 10, tzinfo=dt.UTC)

Tables = dict[str, pl.DataFrame]


def _events() -> pl.DataFrame:
    # 100 views by 10 users on 10 items over 10 days, 5 purchases: label rate 0.05.
    rows: list[dict[str, Any]] = []
    for i in range(100):
        rows.append(
            {
                S.EVENT_TIME: NOON - dt.timedelta(hours=2 * i),
                S.USER_ID: i % 10,
                S.ITEM_ID: (i * i) % 10,  # uneven popularity
                S.EVENT_TYPE: "view",
                S.TRANSACTION_ID: None,
            }
        )
    for i in range(5):
        rows.append(
            {
                S.EVENT_TIME: NOON - dt.timedelta(hours=2 * i + 1),
                S.USER_ID: i,
                S.ITEM_ID: i,
                S.EVENT_TYPE: "purchase",
                S.TRANSACTION_ID: f"t{i}",
            }
        )
    return pl.DataFrame(rows, schema=S.EVENTS)


def _items() -> pl.DataFrame:
    return pl.DataFrame(
        {
            S.ITEM_ID: list(range(10)),
            S.VALID_FROM: [MIDNIGHT - dt.timedelta(days=30)] * 10,
            S.CATEGORY_ID: [i % 3 for i in range(10)],
            S.PRICE: [float(i) for i in range(10)],
            S.AVAILABLE: [True] * 10,
            S.TITLE: [f"item {i}" for i in range(10)],
        },
        schema=S.ITEMS,
    )


def _snapshots(entity: str, n: int) -> pl.DataFrame:
    times = [MIDNIGHT - dt.timedelta(days=1), MIDNIGHT]
    return pl.DataFrame(
        {
            entity: [i for _ in times for i in range(n)],
            "event_timestamp": [t for t in times for _ in range(n)],
        },
        schema={entity: pl.Int64(), "event_timestamp": S.TIME},
    )


def _user_features() -> pl.DataFrame:
    base = _snapshots(S.USER_ID, 5)
    return base.with_columns(
        user_views_7d=pl.int_range(pl.len()).cast(pl.Int64),
        user_purchases_30d=pl.lit(1, pl.Int64),
        user_conversion_rate=pl.lit(0.1),
    )


def _item_features() -> pl.DataFrame:
    base = _snapshots(S.ITEM_ID, 6)
    return base.with_columns(
        item_price=pl.lit(9.5),
        item_category_id=pl.lit(3, pl.Int64),
        item_available=pl.lit(True),
        item_popularity_bucket=pl.lit("tail"),
        item_views_30d=pl.lit(4, pl.Int64),
    )


def _split(name: str, offset_days: int) -> pl.DataFrame:
    n = 20
    return pl.DataFrame(
        {
            S.USER_ID: [i % 7 for i in range(n)],
            S.ITEM_ID: list(range(n)),
            S.EVENT_TIME: [MIDNIGHT - dt.timedelta(days=offset_days, hours=i) for i in range(n)],
            S.LABEL: [1 if i in (3, 11) else 0 for i in range(n)],
            S.SPLIT: [name] * n,
            S.POPULARITY_BUCKET: [S.BUCKETS[i % 3] for i in range(n)],
            S.ITEM_CATEGORY: [i % 4 for i in range(n)],
            "user_views_7d": [float(i) for i in range(n)],
            "user_conversion_rate": [0.05] * n,
            "item_price": [2.5] * n,
        },
        schema_overrides={S.EVENT_TIME: S.TIME, S.LABEL: pl.Int8()},
    )


def clean_tables() -> Tables:
    """Every table the gate reads, clean."""
    return {
        "events": _events(),
        "items": _items(),
        "user_features": _user_features(),
        "item_features": _item_features(),
        "train": _split("train", 9),
        "validation": _split("validation", 6),
        "test": _split("test", 4),
    }


def write_tables(layout: Layout, tables: Tables) -> None:
    for name, frame in tables.items():
        if name in ("events", "items"):
            path = layout.table(name)
        elif name.endswith("_features"):
            path = layout.features / f"{name}.parquet"
        else:
            path = layout.training / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path)


def make_config(data_dir: Path, **validation: Any) -> Config:
    return config_from_dict(
        {
            "data_dir": str(data_dir),
            "ingest": {"now": NOON.isoformat()},
            "validation": {"data_docs": False, **validation},
        }
    )
