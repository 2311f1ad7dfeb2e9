"""The daily job: the whole chain for a date or a range, idempotent and observable."""

from __future__ import annotations

from longtail.daily.chain import (
    build_steps,
    gate_step,
    last_data_date,
    run_daily,
)
from longtail.daily.runner import RunContext, Step, StepFailed, data_dir_lock, run_steps

__all__ = [
    "RunContext",
    "Step",
    "StepFailed",
    "build_steps",
    "data_dir_lock",
    "gate_step",
    "last_data_date",
    "run_daily",
    "run_steps",
]
