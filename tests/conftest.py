"""Shared fixtures: one local Ray for the whole session, tiny configs, temp data dirs."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from longtail.storage import DataStore

REPO = Path(__file__).resolve().parents[1]
#: The test server's only identity; it listens on loopback and lives for one session.
S3_TEST_KEYS = {
    "AWS_ACCESS_KEY_ID": "longtail-test",
    "AWS_SECRET_ACCESS_KEY": "longtail-test-secret",
}
S3_TEST_BUCKET = "longtail-test"

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


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 server (SeaweedFS, started by ``scripts/s3_local.sh``) on a free loopback port.

    Its keys are put in ``AWS_*`` for the session (as a job gets them); the bucket
    ``longtail-test`` exists. Missing ``weed`` skips locally and fails under ``CI=true``.
    """
    from tests.services import free_port_block, weed

    binary = weed()
    folder = tmp_path_factory.mktemp("seaweedfs")
    port = free_port_block(8)
    saved = {k: os.environ.get(k) for k in S3_TEST_KEYS}
    os.environ.update(S3_TEST_KEYS)
    script = str(REPO / "scripts" / "s3_local.sh")
    env = {**os.environ, "WEED": binary}
    started = subprocess.run(
        [script, "start", str(folder), str(port)], env=env, capture_output=True, text=True
    )
    if started.returncode != 0:
        subprocess.run([script, "stop", str(folder)], env=env, check=False)
        pytest.fail(f"SeaweedFS did not start: {started.stderr.strip()}", pytrace=False)
    endpoint = started.stdout.strip()
    try:
        import pyarrow.fs as pafs

        host = endpoint.removeprefix("http://")
        pafs.S3FileSystem(
            endpoint_override=host, scheme="http", region="us-east-1", allow_bucket_creation=True
        ).create_dir(S3_TEST_BUCKET)
        yield endpoint
    finally:
        subprocess.run([script, "stop", str(folder)], env=env, check=False)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_store(s3_endpoint: str) -> DataStore:
    """A fresh, empty data directory in the test bucket (its own prefix per test)."""
    from longtail.storage import DataStore

    return DataStore(
        bucket=S3_TEST_BUCKET, prefix=f"t-{uuid.uuid4().hex[:12]}", endpoint_url=s3_endpoint
    )
