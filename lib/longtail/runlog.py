"""A legible terminal for batch jobs: one line per step on screen, the rest in a log file.

Feast's registry chatter, Ray's worker banners and execution plans, known-harmless
Ray errors and library warnings are what a developer needs when something breaks,
not what a user reads during a run. :class:`RunLog` sends all of it (Python logging,
``print`` from libraries, and the C++ output of Ray written straight to file
descriptor 2) to a log file, and keeps on the terminal the project's step lines
(``longtail.daily``), warnings and errors of the project, and errors of anything.
With ``verbose`` nothing is hidden from the terminal.

While a step runs, a progress line says how long it has been running and, when the
manifest knows the step's last duration, how far along that puts it: a bar redrawn
in place on an interactive terminal, a log line every ``interval`` seconds otherwise.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TextIO

__all__ = ["STEP_LOGGER", "RunLog", "format_seconds"]

# Records of this logger carry ``step_event`` ("start"/"end") and ``step``/``expected``.
STEP_LOGGER: Final = "longtail.daily"
_SHOWN_INFO: Final = ("longtail.daily", "__main__")
_BAR: Final = 24


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m 05s`` or ``1h 02m``: durations a person reads at a glance."""
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


class _Terminal(logging.Filter):
    """What the terminal shows without ``--verbose``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        if record.name.startswith("longtail"):
            return record.levelno >= logging.WARNING or record.name.startswith(_SHOWN_INFO)
        return record.name.startswith(_SHOWN_INFO)


class _LineWriter(io.TextIOBase):
    """A text stream that writes what libraries print into the log file, line by line."""

    def __init__(self, sink: RunLog) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._sink.write_raw(text)
        return len(text)

    def flush(self) -> None:
        self._sink.flush()

    def isatty(self) -> bool:
        return False


class _Progress:
    """The running step's progress line: a bar on a terminal, periodic lines otherwise."""

    def __init__(self, stream: TextIO, *, interactive: bool, interval: float) -> None:
        self._stream = stream
        self._interactive = interactive
        self._interval = interval
        self._lock = threading.Lock()
        self._step: str | None = None
        self._expected: float | None = None
        self._t0 = 0.0
        self._drawn = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def line(self) -> str:
        elapsed = time.perf_counter() - self._t0
        text = f"{self._step}: running {format_seconds(elapsed)}"
        if self._expected and self._expected > 1:
            done = min(elapsed / self._expected, 0.99)
            fill = round(done * _BAR)
            bar = "#" * fill + "-" * (_BAR - fill)
            text += f" [{bar}] ~{done:.0%} of the last run's {format_seconds(self._expected)}"
        return text

    def start(self, step: str, expected: float | None) -> None:
        self.stop()
        self._step, self._expected, self._t0 = step, expected, time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="longtail-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.clear()
        self._step = None

    def clear(self) -> None:
        with self._lock:
            if self._drawn:
                self._stream.write("\r\033[K")
                self._stream.flush()
                self._drawn = False

    def _loop(self) -> None:
        tick = 0.5 if self._interactive else self._interval
        while not self._stop.wait(tick):
            with self._lock:
                if self._interactive:
                    self._stream.write("\r\033[K  " + self.line())
                    self._drawn = True
                else:
                    stamp = dt.datetime.now().strftime("%H:%M:%S")
                    self._stream.write(f"{stamp} {self.line()}\n")
                self._stream.flush()


class _TerminalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes records above the progress line and drives it from the step records."""

    def __init__(self, stream: TextIO, progress: _Progress) -> None:
        super().__init__(stream)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "step_event", None)
        if event is not None:
            self._progress.stop()
        else:
            self._progress.clear()
        super().emit(record)
        if event == "start":
            step, expected = getattr(record, "step", ""), getattr(record, "expected", None)
            self._progress.start(str(step), expected)


class RunLog(contextlib.AbstractContextManager["RunLog"]):
    """Route a job's output: step lines to the terminal, everything to a log file.

    Use as a context manager around the job; :meth:`use` points the log at a file
    (a daily run calls it per date with ``DATA_DIR/runs/date=D/run.log``). What is
    written before the first :meth:`use` is kept and lands at the top of that file.

    Parameters
    ----------
    verbose
        Redirect nothing: the terminal shows everything, and the log file still gets
        every logging record (not what libraries print, which stays on the terminal).
    interval
        Seconds between progress lines when the terminal is not interactive.
    default
        Where the log goes when the job ends before any :meth:`use` (e.g. it failed
        before the run date was known).
    """

    def __init__(
        self, *, verbose: bool = False, interval: float = 30.0, default: Path | None = None
    ) -> None:
        self.verbose = verbose
        self.interval = interval
        self.default = default
        self.path: Path | None = None
        self._pending = io.StringIO()
        self._file: TextIO | None = None
        self._lock = threading.RLock()
        self._saved: dict[str, Any] = {}

    # ------------------------------------------------------------------ sinks
    def write_raw(self, text: str) -> None:
        """Append ``text`` to the log file (or the buffer before the first :meth:`use`)."""
        with self._lock:
            (self._file or self._pending).write(text)

    def flush(self) -> None:
        """Flush the log file."""
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def use(self, path: Path) -> Path:
        """Append from now on to ``path`` (its folder is created); return it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self.path == path:
                return path
            old = self._file
            new = path.open("a", encoding="utf-8", buffering=1)
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            new.write(f"===== {stamp} pid {os.getpid()}: {' '.join(sys.argv)}\n")
            new.write(self._pending.getvalue())
            self._pending = io.StringIO()
            self._file, self.path = new, path
            if "fd2" in self._saved:
                sys.stderr.flush()
                os.dup2(new.fileno(), 2)
            if old is not None:
                old.close()
        return path

    # ------------------------------------------------------------------ context
    def __enter__(self) -> RunLog:
        # The terminal is a duplicate of file descriptor 2, kept before fd 2 is redirected.
        terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
        interactive = terminal.isatty()
        self._progress = _Progress(terminal, interactive=interactive, interval=self.interval)
        root = logging.getLogger()
        self._saved.update(
            terminal=terminal,
            handlers=list(root.handlers),
            level=root.level,
            stdout=sys.stdout,
            stderr=sys.stderr,
            capture=logging.captureWarnings,
        )
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.setLevel(logging.INFO)
        screen = _TerminalHandler(terminal, self._progress)
        screen.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        if not self.verbose:
            screen.addFilter(_Terminal())
        to_file = logging.StreamHandler(_LineWriter(self))
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(screen)
        root.addHandler(to_file)
        logging.captureWarnings(True)
        if not self.verbose:
            # Libraries that print (Feast's materialize, Ray's worker lines) and C++ code
            # writing to fd 2 (Ray's core worker) go to the log file.
            writer = _LineWriter(self)
            sys.stdout = writer  # type: ignore[assignment]
            sys.stderr = writer  # type: ignore[assignment]
            # fd 2 follows the log file from the first use() on.
            self._saved["fd2"] = os.dup(2)
            if self._file is not None:
                os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in self._saved["handlers"]:
            root.addHandler(handler)
        root.setLevel(self._saved["level"])
        logging.captureWarnings(False)
        sys.stdout, sys.stderr = self._saved["stdout"], self._saved["stderr"]
        if "fd2" in self._saved:
            os.dup2(self._saved["fd2"], 2)
            os.close(self._saved.pop("fd2"))
        self._saved["terminal"].close()
        if self._file is None and self._pending.getvalue() and self.default is not None:
            self.use(self.default)  # stopped before the first date: keep what was logged
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
