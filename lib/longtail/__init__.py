"""longtail: batch scoring for e-commerce recommendations with rare labels and long-tail items."""

from __future__ import annotations

__version__ = "0.1.0"
