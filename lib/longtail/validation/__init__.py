"""Validate: Great Expectations gates, imbalance metrics and reports.

The daily chain's gate steps (:func:`longtail.daily.chain.gate_step`) call
:func:`run_gate` then :func:`ensure_passed`; ``jobs/validate.py`` is the command line.
"""

from __future__ import annotations

from longtail.validation.engine import Finding, SuiteOutcome
from longtail.validation.gate import (
    GateResult,
    Stage,
    ensure_passed,
    format_result,
    run_gate,
)

__all__ = [
    "Finding",
    "GateResult",
    "Stage",
    "SuiteOutcome",
    "ensure_passed",
    "format_result",
    "run_gate",
]
