"""Errors a user can act on; jobs print them as one line and exit non-zero."""

from __future__ import annotations


class LongtailError(Exception):
    """Base of every error that is the input's fault, not a bug."""


class ConfigError(LongtailError):
    """The configuration file or a value in it is wrong."""


class SourceError(LongtailError):
    """A source file is missing, unreadable, or lacks a required column."""


class GateError(LongtailError):
    """A data-quality gate failed."""


class StageError(LongtailError):
    """A pipeline stage cannot run on the inputs it was given."""
