"""Validate: Great Expectations gates, imbalance metrics and reports.

The daily job calls :func:`run_gate` then :func:`ensure_passed` (or adds
:func:`gate_step` to the chain); ``jobs/validate.py`` is the command line.
"""

from __future__ import annotations

from longtail.validation.engine import Finding, SuiteOutcome
from longtail.validation.gate import (
    GateResult,
    Stage,
    ensure_passed,
    format_result,
    gate_step,
    report_dir,
    run_gate,
)

__all__ = [
    "Finding",
    "GateResult",
    "Stage",
    "SuiteOutcome",
    "ensure_passed",
    "format_result",
    "gate_step",
    "report_dir",
    "run_gate",
]
