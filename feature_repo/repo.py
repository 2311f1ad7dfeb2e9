"""The longtail feature repo, read top-down: entities, sources, feature views, feature service.

The objects are built by ``longtail.store.definitions.build_definitions`` from the
``[features]`` section of the config (``$LONGTAIL_CONFIG``, default the demo config),
so ``feast apply`` here registers exactly what the jobs register from code: every
object of ``Definitions.objects()``, the recommendation lists included. ``feast apply``
deletes what a repo does not declare, so a view missing here would vanish from the
registry the jobs serve from.
"""

from __future__ import annotations

import os
from pathlib import Path

from longtail.config import load_config
from longtail.store.definitions import build_definitions

_CONFIG = Path(
    os.environ.get(
        "LONGTAIL_CONFIG", Path(__file__).resolve().parents[1] / "jobs/configs/demo.toml"
    )
)
_cfg = load_config(_CONFIG)
_defs = build_definitions(_cfg.features, service=_cfg.feature_store.feature_service)

# Entities: a shopper and a catalogue item, keyed by the canonical integer ids.
user = _defs.user
item = _defs.item

# Sources: daily snapshots under DATA_DIR/features/, each computed from events
# strictly before its event_timestamp (D 00:00 UTC).
user_snapshots = _defs.user_source
item_snapshots = _defs.item_source

# Feature views: user activity/conversion/recency and item popularity/conversion/price,
# with a TTL of features.ttl_days (older snapshots are not served).
user_features = _defs.user_features
item_features = _defs.item_features

# Feature service (versioned): the ranking model's inputs, for training and scoring alike.
ranking_v1 = _defs.service

# Serving: the calibrated top-K list per user that batch scoring writes (its Parquet
# source, DATA_DIR/serving/user_recommendations.parquet) and pushes to the online store.
recommendation_lists = _defs.recs_source
user_recommendations = _defs.recommendations
