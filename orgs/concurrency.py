"""Optimistic concurrency: a change made from a stale copy is refused, never silently applied.

Findings and interventions carry a ``version`` bumped by every write. A caller that read
version N passes ``expected_version=N``; when the row has moved on, the service raises
``StaleVersionError`` with the current row, so the console can show it and the API can
answer 409/412 with the current state.
"""

from __future__ import annotations


class StaleVersionError(Exception):
    def __init__(self, *, current, expected: int):
        self.current = current
        self.expected = expected
        super().__init__(
            f"{current._meta.verbose_name.capitalize()} #{current.pk} changed since you loaded it "
            f"(version {expected}, now {current.version}); reload and try again."
        )


def check_version(row, expected_version: int | None) -> None:
    """Raise when ``expected_version`` is given and the (locked, fresh) row is at another version."""
    if expected_version is not None and int(expected_version) != row.version:
        raise StaleVersionError(current=row, expected=int(expected_version))
