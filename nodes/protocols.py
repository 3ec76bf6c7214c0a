"""The protocols a node can be filtered by: what discovery knows how to name.

Discovery (scans) registers where the names come from when it is ready; nodes never imports it.
The names are read when a form first asks, so a process that never draws the filter never
loads discovery's registry.
"""

from __future__ import annotations

from collections.abc import Callable

_source: list[Callable[[], list[str]]] = []


def protocol_names_register(source: Callable[[], list[str]]) -> None:
    _source[:] = [source]


def protocol_names() -> list[str]:
    return _source[0]() if _source else []
