"""Atomic writes: outputs go to a temporary place and are swapped in whole.

A folder is swapped in with one ``renameat2(RENAME_EXCHANGE)`` where the file
system has it (ext4, xfs, btrfs, tmpfs, overlayfs): a reader of the target sees
the old folder or the new one, never neither. Elsewhere the swap falls back to
two renames, with a journal written first so :func:`recover_swaps` can finish
it after a crash between them. Leftovers of dead runs (temporary folders and
files, journals) all match :data:`DEBRIS` and are removed by :func:`recover_swaps`,
which the jobs call once they hold the data directory's lock.

Everything written here is readable by other users as far as the process umask
allows (0755 folders and 0644 files under the usual 022), where ``tempfile``
alone would give 0700/0600.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

__all__ = [
    "DEBRIS",
    "Recovery",
    "atomic_dir",
    "atomic_file",
    "exchange",
    "output_modes",
    "recover_swaps",
    "write_csv",
    "write_json",
    "write_parquet",
    "write_text",
]

#: Names of temporary things this module creates: ``.NAME.tmp-XXXXXXXX`` and
#: ``.NAME.old-XXXXXXXX`` folders, ``.NAME.swap-XXXXXXXX.json`` journals and
#: ``.NAME.XXXXXXXX.tmp`` files (``XXXXXXXX``: tempfile's random part).
DEBRIS: Final = re.compile(r"^\..+\.(?:(?:tmp|old)-\w+|swap-\w+\.json|\w{8}\.tmp)$")
_JOURNAL: Final = re.compile(r"^\..+\.swap-\w+\.json$")
_AT_FDCWD: Final = -100
_RENAME_EXCHANGE: Final = 2
#: Folders a job's tools own (Ray's run state); recovery does not look inside.
_NOT_OURS: Final = frozenset({"_ray_runs", "_ray"})


def _umask() -> int:
    # /proc tells the umask without changing it (os.umask would, for every thread).
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_modes() -> tuple[int, int]:
    """The (folder, file) modes outputs get: 0777 and 0666 less the process umask."""
    mask = _umask()
    return 0o777 & ~mask, 0o666 & ~mask


def _mkstemp_beside(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, output_modes()[1])
    return fd, tmp


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary file beside ``path`` that replaces ``path`` when the block ends.

    The one atomic file write of the project: write the whole file to the yielded
    path; on success it is renamed over ``path`` (readers see the old file or the
    new one), on an exception it is removed and ``path`` is left as it was.
    """
    fd, tmp = _mkstemp_beside(path)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_parquet(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` atomically (temp file in the same folder, then rename)."""
    with atomic_file(path) as tmp:
        frame.write_parquet(tmp, statistics=True)
    return path


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` as CSV to ``path`` atomically."""
    with atomic_file(path) as tmp:
        frame.write_csv(tmp)
    return path


def write_text(text: str, path: Path) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(obj: Any, path: Path) -> Path:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    return write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def _libc_renameat2() -> Any:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).renameat2
    return None


_renameat2: Final = _libc_renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False where the system cannot."""
    if _renameat2 is None:
        return False
    rc = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}:
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, target: Path, *, keep_old: bool) -> None:
    if not target.exists():
        os.rename(new, target)
        return
    old = new.with_name(new.name.replace(".tmp-", ".old-", 1))
    if exchange(new, target):
        # ``new`` now holds the old contents.
        if keep_old:
            os.rename(new, old)
        else:
            shutil.rmtree(new)
        return
    # Two renames leave a moment without the target: the journal lets the next
    # start finish the swap if this process dies in it.
    journal = new.with_name(new.name.replace(".tmp-", ".swap-", 1) + ".json")
    write_json({"target": str(target), "new": str(new), "old": str(old)}, journal)
    os.replace(target, old)
    os.replace(new, target)
    if not keep_old:
        shutil.rmtree(old)
    journal.unlink()


@contextlib.contextmanager
def atomic_dir(
    target: Path, *, staging: Path | None = None, keep_old: bool = False
) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``target`` whole on success.

    Parameters
    ----------
    target
        The folder to replace (or create).
    staging
        Where the temporary folder lives (default: beside ``target``); must be on
        the same file system. Partitions of a dataset (``recommendations/date=D``)
        stage outside the dataset folder, so a reader's glob never meets them.
    keep_old
        Park the replaced folder in ``staging`` (as ``.NAME.old-*``) instead of
        deleting it; the next job start deletes it (:func:`recover_swaps`). A
        reader that opened the old folder before the swap (a folder descriptor)
        then reads it whole; with immediate deletion its files could vanish
        under it. For outputs served to readers outside the jobs.

    On an exception the temporary folder is removed and ``target`` is left as it
    was. A reader sees either the old or the new contents (see the module notes).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = staging or target.parent
    staging.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=staging))
    os.chmod(tmp, output_modes()[0])
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, target, keep_old=keep_old)


@dataclass
class Recovery:
    """What :func:`recover_swaps` did."""

    finished: list[Path] = field(default_factory=list)
    rolled_back: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per action, for the job's log."""
        return (
            [f"finished an interrupted swap of {p}" for p in self.finished]
            + [f"rolled back an interrupted swap of {p}" for p in self.rolled_back]
            + [f"removed leftover {p}" for p in self.removed]
        )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def recover_swaps(root: Path) -> Recovery:
    """Finish or roll back interrupted swaps under ``root`` and remove leftovers.

    Only call this while holding the lock of ``root`` (no live writer may own a
    temporary folder). A journalled swap whose target is missing is finished
    when its new folder is there (it was complete before the journal was
    written), else rolled back from the old one. Then every name matching
    :data:`DEBRIS` goes.
    """
    done = Recovery()
    if not root.is_dir():
        return done
    found: list[Path] = []
    for parent, dirs, files in os.walk(root):
        here = Path(parent)
        found += [here / n for n in (*dirs, *files) if DEBRIS.match(n)]
        dirs[:] = [d for d in dirs if not DEBRIS.match(d) and d not in _NOT_OURS]
    for journal in (p for p in found if _JOURNAL.match(p.name)):
        try:
            entry = json.loads(journal.read_text(encoding="utf-8"))
            target, new, old = (Path(entry[k]) for k in ("target", "new", "old"))
        except (OSError, ValueError, KeyError):
            continue  # unreadable: removed below like any leftover
        if not target.exists() and new.is_dir():
            os.rename(new, target)
            done.finished.append(target)
        elif not target.exists() and old.is_dir():
            os.rename(old, target)
            done.rolled_back.append(target)
    for path in found:
        if path.exists():
            _remove(path)
            done.removed.append(path)
    return done
