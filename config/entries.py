"""A list a person types: entries given as a list, or as text with a separator between them.

Forms and the API take such lists alike (a node's tags, a zone's networks and host names), and
read them one way: each entry trimmed, empty ones dropped, each entry once, in the order given.
"""

from __future__ import annotations

import re


def split_entries(value, *, separators: str = ",") -> list[str]:
    """The entries of ``value``: a list, or a string in which any character of ``separators`` ends
    an entry; ``None`` holds none."""
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(f"[{re.escape(separators)}]", value)
    entries: list[str] = []
    for entry in value:
        entry = str(entry).strip()
        if entry and entry not in entries:
            entries.append(entry)
    return entries
