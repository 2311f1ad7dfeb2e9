"""Shared fixtures: one local Ray for the whole session, tiny configs, temp data dirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# Keep Ray quiet and small on 2 cores; never reach out for usage stats.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """Start one local Ray for every integration test that asks for it, on loopback only."""
    import ray

    from longtail.ray_runtime import local_ray_options

    if not ray.is_initialized():
        ray.init(
            **local_ray_options("loopback"),
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            object_store_memory=512 * 1024 * 1024,
        )
    yield ray
    ray.shutdown()
