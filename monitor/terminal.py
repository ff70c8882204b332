"""Text for a terminal: Japanese (full-width) characters take two columns when tables are aligned."""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """Terminal columns: full-width (Japanese) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
