"""Connection budgets as people set them: what a zone's workers, or one node, may be sent.

A zone has a budget of new connections per second (all its workers together); a node has one of
new connections per second and one of connections open at once. Empty is no limit. The values
are checked here, once, for every form, serializer and service that sets them; the scanners
keep to them through ``scans.scanners.connections``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

MAX_NEW_PER_SECOND = 100_000
MAX_AT_ONCE = 10_000


def budget_clean(value, *, what: str, maximum: int) -> int | None:
    """An empty value is no limit; otherwise a whole number from 1 to ``maximum``, or a ValidationError."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
        if isinstance(value, bool) or number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise ValidationError(f"{what}: {str(value)[:20]!r} is not a whole number.", code="budget") from None
    if not 1 <= number <= maximum:
        raise ValidationError(f"{what}: {number:,} is out of bounds: from 1 to {maximum:,}, or empty for no limit.",
                              code="budget")
    return number


def new_per_second_clean(value) -> int | None:
    return budget_clean(value, what="New connections per second", maximum=MAX_NEW_PER_SECOND)


def at_once_clean(value) -> int | None:
    return budget_clean(value, what="Connections at once", maximum=MAX_AT_ONCE)


def budget_text(value: int | None, unit: str) -> str:
    return "no limit" if value is None else f"{value:,} {unit}"
