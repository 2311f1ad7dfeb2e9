"""Run a chain of steps idempotently, with a lock, a manifest and timings.

Each step declares the files it reads, the files it writes and the config
sections it depends on. Its fingerprint hashes all of these (file contents, not
mtimes). A rerun skips a step whose fingerprint and outputs are unchanged, so
running the chain twice gives the same outputs and redoes nothing. A failing step
stops the chain with an error that names it; outputs of earlier steps stay, and
every step writes its own outputs atomically, so a crash leaves the previous
outputs intact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longtail.config import Config
from longtail.errors import LongtailError, StageError
from longtail.io import write_json
from longtail.locking import LockHeld, data_dir_lock
from longtail.paths import Layout
from longtail.runlog import format_seconds

__all__ = [
    "LockHeld",
    "RunContext",
    "Step",
    "StepFailed",
    "data_dir_lock",
    "format_metrics",
    "run_steps",
]

log = logging.getLogger(__name__)


class StepFailed(LongtailError):
    """A step of the chain failed; the message names it."""


@dataclass(frozen=True)
class RunContext:
    """What a step gets: the config, the data layout and the run date."""

    cfg: Config
    layout: Layout
    date: dt.date


@dataclass(frozen=True)
class Step:
    """One step of the chain.

    ``run`` returns metrics (row counts and the like) recorded in the manifest.
    ``inputs``/``outputs`` list files or folders; ``config`` names the config
    sections whose values change the step's result. ``per_date`` steps depend on
    the run date.
    """

    name: str
    run: Callable[[RunContext], dict[str, Any]]
    inputs: Callable[[RunContext], Sequence[Path]]
    outputs: Callable[[RunContext], Sequence[Path]]
    config: tuple[str, ...] = ()
    per_date: bool = True
    # When set, the step runs only if this returns True (e.g. a retrain schedule).
    when: Callable[[RunContext], bool] | None = None


@dataclass
class StepRecord:
    """The manifest entry of one step."""

    status: str
    fingerprint: str = ""
    started: str = ""
    ended: str = ""
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _hash_path(path: Path, digest: hashlib._Hash) -> None:
    if path.is_file():
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    elif path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if any(part.startswith(".") for part in child.relative_to(path).parts):
                continue  # temp files and hidden state never count
            digest.update(str(child.relative_to(path)).encode())
            _hash_path(child, digest)
    else:
        digest.update(b"<missing>")


def content_hash(paths: Sequence[Path]) -> str:
    """Hash the contents of files and folders (names and bytes), missing ones included."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.name).encode())
        _hash_path(path, digest)
    return digest.hexdigest()[:16]


def _fingerprint(step: Step, ctx: RunContext) -> str:
    cfg = ctx.cfg.model_dump(mode="json")
    sections = {name: cfg.get(name) for name in step.config}
    parts = {
        "step": step.name,
        "config": sections,
        "seed": cfg["seed"],
        "date": ctx.date.isoformat() if step.per_date else None,
        "inputs": content_hash(list(step.inputs(ctx))),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def format_metrics(metrics: dict[str, Any]) -> str:
    """``users=300 coverage=0.41``: a step's key counts on one line, floats to 4 digits."""
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _unchanged(prev: dict[str, Any], fingerprint: str, outputs: list[Path]) -> bool:
    """Whether a step's last run is still good: same inputs, its outputs there and unchanged."""
    return (
        prev.get("status") in {"done", "skipped"}
        and prev.get("fingerprint") == fingerprint
        and all(p.exists() for p in outputs)
        and prev.get("outputs") == {p.name: content_hash([p]) for p in outputs}
    )


def _execute(
    step: Step, ctx: RunContext, *, fingerprint: str, prev: dict[str, Any], outputs: list[Path]
) -> tuple[StepRecord, tuple[str, Exception] | None]:
    """Run one step and log its start and end; a failure is returned, not raised.

    Returns the step's record and, when it raised, the failure message and the
    exception (the caller saves the manifest, then raises :class:`StepFailed`).
    """
    expected = prev.get("seconds") if prev.get("status") == "done" else None
    log.info(
        "%-20s start", step.name,
        extra={"step_event": "start", "step": step.name, "expected": expected},
    )  # fmt: skip
    started, t0 = _now(), time.perf_counter()
    try:
        metrics = step.run(ctx) or {}
    except Exception as exc:
        seconds = time.perf_counter() - t0
        record = StepRecord(
            status="failed", fingerprint=fingerprint, started=started, ended=_now(),
            seconds=round(seconds, 3), error=f"{type(exc).__name__}: {exc}",
        )  # fmt: skip
        log.error(
            "%-20s FAILED after %s: %s", step.name, format_seconds(seconds), exc,
            extra={"step_event": "end"},
        )  # fmt: skip
        return record, (f"step {step.name!r} failed after {seconds:.1f}s: {exc}", exc)
    seconds = time.perf_counter() - t0
    record = StepRecord(
        status="done", fingerprint=fingerprint, started=started, ended=_now(),
        seconds=round(seconds, 3), metrics=metrics,
        outputs={p.name: content_hash([p]) for p in outputs},
    )  # fmt: skip
    log.info(
        "%-20s done in %s  %s", step.name, format_seconds(seconds), format_metrics(metrics),
        extra={"step_event": "end"},
    )  # fmt: skip
    return record, None


def run_steps(
    steps: Sequence[Step],
    ctx: RunContext,
    *,
    manifest_path: Path,
    force: bool = False,
    upstream: dict[str, StepRecord] | None = None,
) -> dict[str, StepRecord]:
    """Run ``steps`` in order, skipping those whose fingerprint and outputs are unchanged.

    Long because its parameters are documented; the code is one loop over the steps.

    Parameters
    ----------
    steps
        The chain.
    ctx
        Config, layout and date.
    manifest_path
        Where the run manifest is read from and written to after every step.
    force
        Rerun every step, including those whose ``when`` says not today.
    upstream
        Records of steps run before (e.g. the date-independent ingest), copied
        into this manifest so it tells the whole story of the run.

    Returns
    -------
    dict
        Step name -> record, also in the manifest.

    Raises
    ------
    StepFailed
        A step raised; the message names the step and the cause.
    """
    previous: dict[str, Any] = {}
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text()).get("steps", {})
    records: dict[str, StepRecord] = dict(upstream or {})

    def save() -> None:
        write_json(
            {
                "date": ctx.date.isoformat(),
                "data_dir": str(ctx.layout.root),
                "updated": _now(),
                "steps": {k: vars(v) for k, v in records.items()},
            },
            manifest_path,
        )

    for step in steps:
        # --force reruns every step, scheduled or not (a retrain schedule included).
        if step.when is not None and not force and not step.when(ctx):
            records[step.name] = StepRecord(status="not scheduled")
            log.info("%-20s not scheduled for %s", step.name, ctx.date)
            save()
            continue
        fp = _fingerprint(step, ctx)
        prev = previous.get(step.name, {})
        outputs = list(step.outputs(ctx))
        if not force and _unchanged(prev, fp, outputs):
            records[step.name] = StepRecord(**{**prev, "status": "skipped"})
            log.info(
                "%-20s unchanged, skipped (last run took %s)",
                step.name,
                format_seconds(float(prev.get("seconds", 0.0))),
            )
            save()
            continue
        records[step.name], failure = _execute(
            step, ctx, fingerprint=fp, prev=prev, outputs=outputs
        )
        save()
        if failure is not None:
            msg, cause = failure
            raise StepFailed(msg) from cause
        missing = [p for p in outputs if not p.exists()]
        if missing:
            msg = f"step {step.name!r} finished without writing {missing}"
            raise StepFailed(msg) from StageError(msg)
    save()
    return records
