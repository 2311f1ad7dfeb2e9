"""Candidate generation for batch scoring."""

from __future__ import annotations

from longtail.candidates.generate import SOURCES, CandidateConfig, generate_candidates

__all__ = ["SOURCES", "CandidateConfig", "generate_candidates"]
