from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from longtail.config import config_from_dict
from longtail.daily.runner import LockHeld, RunContext, Step, StepFailed, data_dir_lock, run_steps
from longtail.paths import Layout

pytestmark = pytest.mark.unit


def _ctx(tmp_path: Path) -> RunContext:
    cfg = config_from_dict({"data_dir": str(tmp_path)})
    return RunContext(cfg=cfg, layout=Layout(tmp_path), date=dt.date(2024, 1, 2))


def _copy_step(calls: list[str], src: Path, dst: Path, name: str = "copy") -> Step:
    def run(ctx: RunContext) -> dict[str, Any]:
        calls.append(name)
        dst.write_text(src.read_text().upper())
        return {"chars": len(src.read_text())}

    return Step(name=name, run=run, inputs=lambda c: [src], outputs=lambda c: [dst])


def test_rerun_skips_a_step_whose_inputs_are_unchanged(tmp_path: Path) -> None:
    src, dst, calls = tmp_path / "in.txt", tmp_path / "out.txt", []
    src.write_text("abc")
    manifest = tmp_path / "m.json"
    steps = [_copy_step(calls, src, dst)]
    run_steps(steps, _ctx(tmp_path), manifest_path=manifest)
    recs = run_steps(steps, _ctx(tmp_path), manifest_path=manifest)
    assert calls == ["copy"]
    assert recs["copy"].status == "skipped"
    assert dst.read_text() == "ABC"


def test_changed_input_reruns_the_step(tmp_path: Path) -> None:
    src, dst, calls = tmp_path / "in.txt", tmp_path / "out.txt", []
    src.write_text("abc")
    manifest = tmp_path / "m.json"
    steps = [_copy_step(calls, src, dst)]
    run_steps(steps, _ctx(tmp_path), manifest_path=manifest)
    src.write_text("xyz")
    run_steps(steps, _ctx(tmp_path), manifest_path=manifest)
    assert calls == ["copy", "copy"]
    assert dst.read_text() == "XYZ"


def test_tampered_output_is_rebuilt(tmp_path: Path) -> None:
    src, dst, calls = tmp_path / "in.txt", tmp_path / "out.txt", []
    src.write_text("abc")
    manifest = tmp_path / "m.json"
    steps = [_copy_step(calls, src, dst)]
    run_steps(steps, _ctx(tmp_path), manifest_path=manifest)
    dst.write_text("oops")
    run_steps(steps, _ctx(tmp_path), manifest_path=manifest)
    assert dst.read_text() == "ABC"
    assert len(calls) == 2


def test_failure_names_the_step_and_keeps_earlier_outputs(tmp_path: Path) -> None:
    src, dst, calls = tmp_path / "in.txt", tmp_path / "out.txt", []
    src.write_text("abc")

    def boom(ctx: RunContext) -> dict[str, Any]:
        raise ValueError("disk on fire")

    steps = [
        _copy_step(calls, src, dst),
        Step(name="explode", run=boom, inputs=lambda c: [dst], outputs=lambda c: []),
    ]
    manifest = tmp_path / "m.json"
    with pytest.raises(StepFailed, match=r"step 'explode' failed.*disk on fire"):
        run_steps(steps, _ctx(tmp_path), manifest_path=manifest)
    assert dst.read_text() == "ABC"
    saved = json.loads(manifest.read_text())["steps"]
    assert saved["copy"]["status"] == "done"
    assert saved["explode"]["status"] == "failed"
    assert "disk on fire" in saved["explode"]["error"]


def test_the_chain_reexports_the_one_data_dir_lock() -> None:
    from longtail import locking

    assert data_dir_lock is locking.data_dir_lock
    assert LockHeld is locking.LockHeld


def test_unscheduled_step_is_recorded_not_run(tmp_path: Path) -> None:
    calls: list[str] = []
    src, dst = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("a")
    step = _copy_step(calls, src, dst)
    step = Step(name=step.name, run=step.run, inputs=step.inputs, outputs=step.outputs,
                when=lambda c: False)  # fmt: skip
    recs = run_steps([step], _ctx(tmp_path), manifest_path=tmp_path / "m.json")
    assert recs["copy"].status == "not scheduled"
    assert calls == []


def test_force_runs_an_unscheduled_step(tmp_path: Path) -> None:
    calls: list[str] = []
    src, dst = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("a")
    step = _copy_step(calls, src, dst)
    step = Step(name=step.name, run=step.run, inputs=step.inputs, outputs=step.outputs,
                when=lambda c: False)  # fmt: skip
    recs = run_steps([step], _ctx(tmp_path), manifest_path=tmp_path / "m.json", force=True)
    assert recs["copy"].status == "done"
    assert calls == ["copy"]
