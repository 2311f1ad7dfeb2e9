"""Shared command-line plumbing for the jobs: the common flags and the error contract."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from longtail.config import Config, load_config
from longtail.errors import ConfigError, LongtailError
from longtail.ray_runtime import set_local_listen

__all__ = ["base_parser", "load_from_args", "run_main"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "jobs" / "configs" / "demo.toml"


def base_parser(description: str) -> argparse.ArgumentParser:
    """Return a parser with ``--config`` and ``--data-dir``, the flags every job takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config (required; --smoke-test defaults to jobs/configs/demo.toml)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="overrides the config's data_dir: a local folder, or s3://BUCKET/PREFIX "
        "(the [storage] object store; only the Ray stages resample and train take it)",
    )
    return parser


def parse_date(text: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` for argparse, with a clear message."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        msg = f"not a date (YYYY-MM-DD): {text!r}"
        raise argparse.ArgumentTypeError(msg) from exc


def load_from_args(args: argparse.Namespace) -> Config:
    """Load the config named by ``--config``, with ``--data-dir`` applied.

    ``--config`` may be left out only with ``--smoke-test`` (the demo config).

    Also applies the process-wide ``[ray]`` settings (how a local Ray listens).
    """
    path = args.config
    if path is None:
        # No silent default: a job pointed at a real data dir must never run the demo.
        if not getattr(args, "smoke_test", False):
            msg = "--config is required (the synthetic demo is jobs/configs/demo.toml)"
            raise ConfigError(msg)
        path = DEFAULT_CONFIG
    cfg = load_config(path, data_dir=args.data_dir)
    set_local_listen(cfg.ray.listen)
    return cfg


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a job's ``main``; a :class:`LongtailError` becomes one line on stderr and exit 2."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return main(argv)
    except LongtailError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
