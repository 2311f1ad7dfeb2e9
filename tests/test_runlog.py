"""The run log: step lines on the terminal, library chatter (Python, print, fd 2) in the file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from longtail.runlog import format_seconds

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, time
    from pathlib import Path
    from longtail.runlog import RunLog

    with RunLog(verbose=sys.argv[2] == "verbose", interval=0.2) as run:
        logging.getLogger("feast.infra.registry.registry").info("Registry cache expired")
        run.use(Path(sys.argv[1]))
        step = logging.getLogger("longtail.daily.runner")
        step.info("train start", extra={"step_event": "start", "step": "train", "expected": 2.0})
        print("Materializing 1 feature views")
        os.write(2, b"E core_worker.cc: harmless\\n")
        logging.getLogger("longtail.store").info("a detail of the store")
        time.sleep(0.5)
        step.info("train done in 0.5s users=3", extra={"step_event": "end"})
        logging.getLogger("ray.data").error("a real error")
    print("after the run")
    """
)


def _run(tmp_path: Path, mode: str) -> tuple[str, str, str]:
    log = tmp_path / mode / "run.log"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(log), mode],
        capture_output=True, text=True, check=True, timeout=60,
        env={"PYTHONPATH": str(REPO / "lib"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return proc.stdout, proc.stderr, log.read_text()


def test_terminal_shows_steps_progress_and_errors_and_the_file_gets_everything(
    tmp_path: Path,
) -> None:
    out, err, log = _run(tmp_path, "quiet")
    assert "train start" in err and "train done in 0.5s users=3" in err
    assert "train: running" in err  # periodic progress lines (not a terminal here)
    assert "a real error" in err
    for noise in ("Registry cache expired", "Materializing", "core_worker.cc", "a detail"):
        assert noise not in err + out, noise
        assert noise in log, noise  # logged before use() too: kept and written first
    assert out == "after the run\n"


def test_verbose_shows_the_library_output_too(tmp_path: Path) -> None:
    out, err, log = _run(tmp_path, "verbose")
    assert "Registry cache expired" in err and "a detail of the store" in err
    assert "Materializing" in out and "core_worker.cc" in err
    assert "train done" in log


def test_durations_read_at_a_glance() -> None:
    assert [format_seconds(s) for s in (0.42, 42.2, 185, 3720)] == [
        "0.4s", "42s", "3m 05s", "1h 02m",
    ]  # fmt: skip
