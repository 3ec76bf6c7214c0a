"""What the database and the calendar can hold, for every input that names an id or a day.

A number past PostgreSQL's ``bigint`` or a day whose next day leaves Python's calendar is not
a server error: the console's forms and the API's filters check these bounds and answer with a
field error (400). One definition, used by both.
"""

from __future__ import annotations

from datetime import date

from django import forms

ID_MAX = 2**63 - 1  # PostgreSQL bigint: every primary key (BigAutoField)
DAY_YEARS = (1, 9998)  # a day filter adds one day and moves to UTC: both stay within year 9999
OUT_OF_RANGE_DAY = "Out of the supported range of dates (years 1 to 9998)."


def day_in_range(value: date | None) -> None:
    """A validator: a calendar day whose arithmetic (the next day, a move to UTC) cannot overflow."""
    if value is not None and not DAY_YEARS[0] <= value.year <= DAY_YEARS[1]:
        raise forms.ValidationError(OUT_OF_RANGE_DAY, code="out_of_range")


def parse_id(value) -> int | None:
    """``value`` as an object id (1 to ``ID_MAX``), or None when it is not one."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= ID_MAX else None


class DayField(forms.DateField):
    """A console form's day (YYYY-MM-DD) within :data:`DAY_YEARS`."""

    default_validators = [day_in_range]
