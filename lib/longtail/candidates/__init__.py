"""Candidate generation for batch scoring and for the training rows that mirror it."""

from __future__ import annotations

from longtail.candidates.generate import (
    PAIR_FEATURES,
    SOURCES,
    USERS_PER_CHUNK,
    CandidateConfig,
    CandidatePlan,
    CoviewIndex,
    candidate_config,
    generate_candidates,
)

__all__ = [
    "PAIR_FEATURES",
    "SOURCES",
    "USERS_PER_CHUNK",
    "CandidateConfig",
    "CandidatePlan",
    "CoviewIndex",
    "candidate_config",
    "generate_candidates",
]
