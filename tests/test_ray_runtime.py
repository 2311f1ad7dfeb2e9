from __future__ import annotations

from typing import Any

import pytest

from longtail.ray_runtime import warm_ray_data

pytestmark = pytest.mark.integration


def test_warm_ray_data_starts_the_helper_actors_once(ray_session: Any) -> None:
    first = warm_ray_data()
    first.join(timeout=120)
    assert not first.is_alive()
    assert warm_ray_data() is first  # once per process
    named = {a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)}
    # The helpers a session's first actor-pool pipeline would otherwise start itself.
    assert {"datasets_stats_actor", "AutoscalingCoordinator", "ActorLocationTracker"} <= named
