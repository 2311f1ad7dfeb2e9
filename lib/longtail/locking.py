"""One lock per data directory, taken by every job that writes it.

Every job (ingest, features, validate, resample, train, tune, score, backtest,
daily) wraps its work in :func:`data_dir_lock`. The lock is an OS file lock on
``DATA_DIR/runs/.lock`` (``filelock``): the kernel drops it when its process
dies, so a crashed run never leaves a stale lock. Who holds it is written to
``DATA_DIR/runs/.lock.holder`` for the refusal message.

Once the lock is held no other run can be writing, so the first holder in a
process also finishes or rolls back interrupted swaps and removes temporary
leftovers of dead runs (:func:`longtail.io.recover_swaps`).

The lock is re-entrant within one process: a job that calls another job's
code (daily, backtest) holds it once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from filelock import FileLock, Timeout

from longtail.errors import LongtailError
from longtail.io import recover_swaps
from longtail.paths import Layout

__all__ = ["DataDirError", "LockHeld", "check_data_dir", "data_dir_lock"]

log = logging.getLogger(__name__)

LOCK_NAME: Final = ".lock"
HOLDER_NAME: Final = ".lock.holder"

# Lock file -> (lock, depth) for the locks this process holds.
_held: dict[Path, tuple[FileLock, int]] = {}


class LockHeld(LongtailError):
    """Another run holds the data directory."""


class DataDirError(LongtailError):
    """The data directory cannot be used (a file, or not writable)."""


def check_data_dir(root: Path) -> None:
    """Make sure ``root`` is (or can become) a writable folder.

    Raises
    ------
    DataDirError
        ``root`` or a parent is a file, or it cannot be created or written.
    """
    if root.exists() and not root.is_dir():
        msg = f"data dir {root} is a file, not a folder"
        raise DataDirError(msg)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        msg = f"data dir {root}: a parent is a file, not a folder"
        raise DataDirError(msg) from exc
    except OSError as exc:
        msg = f"data dir {root} cannot be created: {exc.strerror}"
        raise DataDirError(msg) from exc
    if not os.access(root, os.W_OK | os.X_OK):
        msg = f"data dir {root} is not writable by this user"
        raise DataDirError(msg)


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    return "another process"


@contextlib.contextmanager
def data_dir_lock(target: Layout | Path | str, *, job: str) -> Iterator[None]:
    """Hold the data directory's exclusive lock for the duration of a job.

    Parameters
    ----------
    target
        The data directory, or its :class:`~longtail.paths.Layout`.
    job
        The job's name, shown to a run that is refused.

    Raises
    ------
    DataDirError
        The data directory cannot be used.
    LockHeld
        Another process holds the lock; the message names it and since when.
    """
    layout = target if isinstance(target, Layout) else Layout(Path(target))
    check_data_dir(layout.root)
    layout.runs.mkdir(parents=True, exist_ok=True)
    path = (layout.runs / LOCK_NAME).resolve()
    if path in _held:  # re-entered by the same process
        lock, depth = _held[path]
        _held[path] = (lock, depth + 1)
        try:
            yield
        finally:
            lock, depth = _held[path]
            _held[path] = (lock, depth - 1)
        return
    holder = layout.runs / HOLDER_NAME
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout as exc:
        msg = (
            f"data dir {layout.root} is locked by another run ({_holder(holder)}); "
            f"{job} refused: wait for that run to finish"
        )
        raise LockHeld(msg) from exc
    _held[path] = (lock, 1)
    try:
        since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        holder.write_text(
            f"{job}, pid {os.getpid()} on {socket.gethostname()}, since {since}\n",
            encoding="utf-8",
        )
        for line in recover_swaps(layout.root).lines():
            log.warning("%s", line)
        yield
    finally:
        del _held[path]
        with contextlib.suppress(OSError):
            holder.unlink()
        lock.release()
