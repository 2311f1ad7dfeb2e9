"""What the tests need from the machine (Redis, Chromium), and what happens when it is missing.

Locally a missing service skips its tests with the command that installs it. Under
``CI=true`` it fails them instead: CI that is green without the browser or the online
store has not tested them (``scripts/services.sh`` installs both, as root).
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

__all__ = ["chromium", "in_ci", "redis_up", "require"]


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
