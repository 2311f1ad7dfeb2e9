"""Connect to Ray the same way in every job: a cluster when one is given, else a local one."""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Final

from longtail.config import RayListen as Listen

__all__ = [
    "ClusterShape",
    "cluster_shape",
    "ensure_ray",
    "local_ray_options",
    "quiet_workers",
    "set_local_listen",
    "shutdown_ray",
    "warm_ray_data",
]

log = logging.getLogger(__name__)

LOOPBACK: Final = "127.0.0.1"
# How a local Ray started by this process listens; set once by the jobs from
# the config's ``[ray] listen`` (longtail.cli), "loopback" unless it says "node".
_listen: Listen = "loopback"


def set_local_listen(listen: Listen) -> None:
    """Choose how a local Ray started later by this process listens (``[ray] listen``)."""
    global _listen
    _listen = listen


def local_ray_options(listen: Listen | None = None) -> dict[str, Any]:
    """``ray.init`` options for a local Ray that listens on loopback only.

    Ray binds its servers (GCS, raylet, object manager, workers, dashboard
    agent, metrics exporter, runtime-env agent) to the node IP, and on Linux it
    resolves a node IP of 127.0.0.1 to the machine's outside address; only its
    "local Ray" mode (the default on macOS and Windows,
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) keeps it on loopback. The variable
    is set for the processes Ray starts, and Ray's constant for this process,
    which may have imported Ray already. ``listen="node"`` returns no options:
    Ray's own choice, reachable from other machines.
    """
    if (listen or _listen) == "node":
        return {}
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    return {"_node_ip_address": LOOPBACK, "dashboard_host": LOOPBACK}


def quiet_workers() -> None:
    """Worker setup hook: silence a Ray Train warning that repeats every second.

    Without the dashboard (we start local Ray without it) the State API is absent,
    and Ray Train's placement-group cleaner warns about it in a loop.
    """
    logging.getLogger(
        "ray.train.v2._internal.execution.controller.placement_group_cleaner"
    ).setLevel(logging.ERROR)


def ensure_ray(*, num_cpus: int | None = None) -> Any:
    """Return the ``ray`` module, initialized.

    Under ``ray job submit`` (``RAY_ADDRESS`` set) or inside a running session this
    joins that cluster (as it is); otherwise it starts a local Ray without the
    dashboard and without usage reporting (the machine may have no network),
    listening on loopback only unless ``[ray] listen = "node"``
    (:func:`local_ray_options`).
    """
    import ray

    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Progress bars on a terminal; in logs and CI, Ray Data's periodic progress lines
    # (bars redrawn into a file garble it).
    bars = sys.stderr.isatty()
    env = {} if bars else {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    runtime_env: dict[str, Any] = {
        "env_vars": env,
        "worker_process_setup_hook": "longtail.ray_runtime.quiet_workers",
    }
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True, runtime_env=runtime_env)
        log.info("joined the Ray cluster at %s", address)
    else:
        options = local_ray_options()
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            configure_logging=False,
            runtime_env=runtime_env,
            **options,
        )
        log.info("started a local Ray (%s)", "loopback only" if options else "on the node IP")
    ray.data.DataContext.get_current().enable_progress_bars = bars
    return ray


@dataclass(frozen=True)
class ClusterShape:
    """The CPUs, GPUs and live nodes a run gets."""

    cpus: float
    gpus: float
    nodes: int


def cluster_shape() -> ClusterShape:
    """What :func:`ensure_ray` connects to, without starting a Ray that is not running.

    Connected, or under ``ray job submit`` (``RAY_ADDRESS``, joined here): the
    cluster's resources and live nodes. Otherwise :func:`ensure_ray` would start a
    local one-node Ray; its CPUs and GPUs are resolved as ``ray.init`` resolves
    them (Ray's own resource spec: cgroup CPU quota, visible accelerators,
    ``RAY_OVERRIDE_RESOURCES``) and nothing is started, so a caller that needs no
    Ray worker (a run in the driver's process) does not pay Ray's start.
    """
    import ray

    if ray.is_initialized() or os.environ.get("RAY_ADDRESS"):
        ensure_ray()
        cluster: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
        return ClusterShape(
            cpus=float(cluster.get("CPU", 1)),
            gpus=float(cluster.get("GPU", 0)),
            nodes=sum(1 for node in nodes if node.get("Alive")),
        )
    from ray._private.resource_and_label_spec import ResourceAndLabelSpec

    spec = ResourceAndLabelSpec().resolve(is_head=True, node_ip_address=LOOPBACK)
    return ClusterShape(cpus=float(spec.num_cpus or 1), gpus=float(spec.num_gpus or 0), nodes=1)


def shutdown_ray() -> None:
    """Stop the Ray this process started or joined, if any (its last worker lines flush now)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


_warmed: threading.Thread | None = None


class _Identity:
    """Actor-pool callable of :func:`warm_ray_data`: returns its batch."""

    def __call__(self, batch: Any) -> Any:
        return batch


def _run_tiny_pipeline() -> None:
    import ray

    try:
        ray.data.range(1, override_num_blocks=1).map_batches(
            _Identity, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.01
        ).materialize()
    except Exception:  # the warm-up only saves time; the real pipeline reports real errors
        log.warning("Ray Data warm-up failed; the first pipeline starts its helpers itself")


def warm_ray_data() -> threading.Thread:
    """Start Ray Data's helper actors on a background thread; join it before the first pipeline.

    A session's first Ray Data pipeline with an actor pool starts three helper actors
    (stats, autoscaling coordinator, actor-location tracker): 4.1 CPU-seconds on this
    2-core machine, spent competing with the pipeline's own actors as they start.
    Run while the driver does other work (``run_scoring`` builds its candidates), a
    tiny pipeline starts them, and the real one finds them running. Once per process:
    later calls return the first call's thread.
    """
    global _warmed
    ensure_ray()
    if _warmed is None:
        _warmed = threading.Thread(target=_run_tiny_pipeline, name="ray-data-warm-up", daemon=True)
        _warmed.start()
    return _warmed
