from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from longtail.ray_runtime import warm_ray_data

LIB = Path(__file__).resolve().parents[1] / "lib"

pytestmark = pytest.mark.integration


def test_warm_ray_data_starts_the_helper_actors_once(ray_session: Any) -> None:
    first = warm_ray_data()
    first.join(timeout=120)
    assert not first.is_alive()
    assert warm_ray_data() is first  # once per process
    named = {a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)}
    # The helpers a session's first actor-pool pipeline would otherwise start itself.
    assert {"datasets_stats_actor", "AutoscalingCoordinator", "ActorLocationTracker"} <= named


def _listening(pids: set[int]) -> list[tuple[str, int]]:
    import psutil

    return [
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _tree(pid: int) -> set[int]:
    import psutil

    root = psutil.Process(pid)
    return {root.pid, *(p.pid for p in root.children(recursive=True))}


def test_the_session_ray_listens_on_loopback_only(ray_session: Any) -> None:
    @ray_session.remote
    def ping() -> int:
        return 1

    assert ray_session.get(ping.remote()) == 1
    sockets = _listening(_tree(os.getpid()))
    assert len(sockets) >= 3  # GCS, raylet, a worker at least: the listing sees Ray
    assert [s for s in sockets if not _is_loopback(s[0])] == []


# A job's local Ray with a task, an actor and a Ray Data pipeline running: every
# Ray process then listens (GCS, raylet, object manager, workers, agents, metrics).
_JOB = """
import json, os, sys
import psutil
from longtail.ray_runtime import ensure_ray, set_local_listen
set_local_listen(sys.argv[1])
ray = ensure_ray(num_cpus=1)

@ray.remote
class Echo:
    def ping(self):
        return os.getpid()

actor = Echo.remote()
ray.get(actor.ping.remote())
ray.data.range(4, override_num_blocks=2).map_batches(lambda b: b).materialize()
root = psutil.Process()
pids = {root.pid, *(p.pid for p in root.children(recursive=True))}
print(json.dumps([
    [c.laddr.ip, c.laddr.port, psutil.Process(c.pid).name()]
    for c in psutil.net_connections(kind="inet")
    if c.status == psutil.CONN_LISTEN and c.pid in pids
]))
ray.shutdown()
"""


def _fresh_process(code: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a new interpreter without Ray, as a fresh shell has it: its last JSON."""
    clean = {k: v for k, v in os.environ.items() if k not in {"RAY_ADDRESS"}}
    clean.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    clean.update(PYTHONPATH=str(LIB), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, env=clean, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _job_sockets(listen: str) -> list[list[Any]]:
    sockets: list[list[Any]] = _fresh_process(_JOB, listen)
    return sockets


@pytest.mark.slow
def test_a_local_ray_started_by_a_job_listens_on_loopback_only() -> None:
    sockets = _job_sockets("loopback")
    names = {name for _, _, name in sockets}
    assert {"gcs_server", "raylet"} <= names, sockets
    assert [s for s in sockets if not _is_loopback(s[0])] == []


_SHAPE = """
import json
import ray
from longtail.ray_runtime import cluster_shape, ensure_ray
before = cluster_shape()
started = ray.is_initialized()
ensure_ray()
print(json.dumps([vars(before), started, vars(cluster_shape()), ray.is_initialized()]))
ray.shutdown()
"""


@pytest.mark.slow
def test_the_shape_of_a_local_ray_not_yet_started_is_what_its_start_gives_and_starts_nothing() -> (
    None
):
    # Ray's own override makes a CPU count that no cpu_count() of this machine would give.
    before, started, after, running = _fresh_process(
        _SHAPE, env={"RAY_OVERRIDE_RESOURCES": '{"CPU": 3}'}
    )
    assert started is False
    assert before == {"cpus": 3.0, "gpus": 0.0, "nodes": 1}
    assert running is True and after == before
