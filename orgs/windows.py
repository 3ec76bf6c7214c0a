"""Scan windows: the weekly times an organization (or one of its zones) allows scanning.

A window is a set of weekly ranges in the organization's timezone, written one a line:
``Mon-Fri 20:00-06:00`` (an end before its start runs past midnight into the next day),
``Sat,Sun all day``, ``Wed 12:00-24:00``. No range at all means scanning is always allowed.

Stored as JSON, one ``{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}`` per range
(0 is Monday). Whether a window is open at an instant, and when it next opens or closes,
are answered from the ranges laid out as absolute intervals around that instant: a range
whose wall time falls in a daylight-saving gap or fold lands where ``zoneinfo`` puts it,
and ranges that touch or overlap (Friday night into an all-day Saturday) are one interval.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.core.exceptions import ValidationError

_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_RANGES = 50
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_RANGE = re.compile(r"^(?P<days>[A-Za-z,\s\-–]+?)\s+(?:(?P<all>all\s+day)|(?P<start>\S+)\s*[-–]\s*(?P<end>\S+))$",
                    re.IGNORECASE)


class WindowError(ValueError):
    """A window that cannot be read, with what is wrong in words."""


@dataclass(frozen=True, slots=True)
class WeeklyRange:
    days: tuple[int, ...]  # 0 = Monday
    start: int  # minutes after midnight, 0..1439
    end: int  # minutes after midnight, 1..1440; at or before start: the range ends the next day

    def to_dict(self) -> dict:
        return {"days": list(self.days), "start": _hhmm(self.start), "end": _hhmm(self.end)}

    def __str__(self) -> str:
        days = _days_text(self.days)
        if self.start == 0 and self.end == 1440:
            return f"{days} all day"
        return f"{days} {_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days_text(days: tuple[int, ...]) -> str:
    """[0,1,2,3,4] -> 'Mon-Fri'; [5,6] -> 'Sat-Sun'; [0,2] -> 'Mon,Wed'."""
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(DAY_LABELS[r[0]] if len(r) == 1 else f"{DAY_LABELS[r[0]]}-{DAY_LABELS[r[-1]]}" for r in runs)


def _day(text: str) -> int:
    """'Mon', 'monday', 'Tues' -> its number (0 = Monday)."""
    name = text.strip().lower()
    for number, full in enumerate(_FULL_DAYS):
        if len(name) >= 3 and full.startswith(name):
            return number
    raise WindowError(f"unknown day {text.strip()!r} (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")


def _parse_days(text: str) -> tuple[int, ...]:
    days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            raise WindowError(f"days {text.strip()!r}: an empty day between commas")
        if "-" in part or "–" in part:
            first, last = re.split(r"[-–]", part, maxsplit=1)
            a, b = _day(first), _day(last)
            if b < a:
                raise WindowError(f"days {part!r} run backwards (write Sat-Sun, or Mon,Sun)")
            days.update(range(a, b + 1))
        else:
            days.add(_day(part))
    return tuple(sorted(days))


def _parse_time(text: str, *, end: bool) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise WindowError(f"time {text.strip()!r} is not HH:MM (24-hour, e.g. 06:00 or 20:30)")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if end and (hours, minutes) == (24, 0):
        return 1440
    if hours > 23 or minutes > 59:
        raise WindowError(f"time {text.strip()!r} is not a time of day (00:00 to 23:59; 24:00 only as an end)")
    return hours * 60 + minutes


def parse_range(text: str) -> WeeklyRange:
    """'Mon-Fri 20:00-06:00' -> WeeklyRange; WindowError with the reason otherwise."""
    line = " ".join(text.split())
    match = _RANGE.match(line)
    if not match:
        raise WindowError(f"{line!r}: write days then times, e.g. 'Mon-Fri 20:00-06:00' or 'Sat-Sun all day'")
    days = _parse_days(match.group("days"))
    if match.group("all"):
        return WeeklyRange(days, 0, 1440)
    start, end = _parse_time(match.group("start"), end=False), _parse_time(match.group("end"), end=True)
    if start == end:
        raise WindowError(f"{line!r}: the end equals the start (for a whole day write 'all day' or 00:00-24:00)")
    return WeeklyRange(days, start, end)


def parse_text(text: str) -> list[WeeklyRange]:
    """One range a line (blank lines and ';' separators allowed); an empty text is no window."""
    lines = [part.strip() for line in (text or "").splitlines() for part in line.split(";")]
    return _numbered_ranges((line for line in lines if line), parse_range)


def ranges_from_json(data: Iterable[dict] | None) -> list[WeeklyRange]:
    """The stored form back into ranges, validated as typed text is (an API caller sends this form)."""
    if data is None:
        return []
    if not isinstance(data, (list, tuple)):
        raise WindowError("windows are a list of {days, start, end} ranges")
    return _numbered_ranges(data, _range_from_json)


def _range_from_json(item: Any) -> WeeklyRange:
    if not isinstance(item, dict) or set(item) - {"days", "start", "end"}:
        raise WindowError("a range is {\"days\": [...], \"start\": \"HH:MM\", \"end\": \"HH:MM\"}")
    days = item.get("days")
    if not isinstance(days, list) or not days:
        raise WindowError("days is a non-empty list of 0 (Monday) to 6 (Sunday) or day names")
    numbers = {d if isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 else
               _day(d) if isinstance(d, str) else _bad_day(d) for d in days}
    start, end = item.get("start"), item.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        raise WindowError("start and end are times of day as \"HH:MM\"")
    return parse_range(f"{_days_text(tuple(sorted(numbers)))} {start}-{end}")


def _numbered_ranges(items: Iterable, parse: Callable[[Any], WeeklyRange]) -> list[WeeklyRange]:
    """Each item read by ``parse``, typed text and stored form alike: an error names the range
    it is in (counted from 1), and a window holds at most MAX_RANGES ranges."""
    ranges = []
    for number, item in enumerate(items, start=1):
        try:
            ranges.append(parse(item))
        except WindowError as exc:
            raise WindowError(f"range {number}: {exc}") from None
    if len(ranges) > MAX_RANGES:
        raise WindowError(f"at most {MAX_RANGES} ranges, not {len(ranges)}")
    return ranges


def windows_validate(data) -> None:
    """A model field's validator: stored windows that cannot be read are refused (the admin, full_clean)."""
    try:
        ranges_from_json(data)
    except WindowError as error:
        raise ValidationError(str(error)) from None


def _bad_day(value) -> int:
    raise WindowError(f"day {value!r} is not 0 (Monday) to 6 (Sunday) or a day name")


def to_json(ranges: Iterable[WeeklyRange]) -> list[dict]:
    return [r.to_dict() for r in ranges]


def to_text(data: Iterable[dict] | None) -> str:
    """The stored form as the lines a person types."""
    return "\n".join(str(r) for r in ranges_from_json(list(data or ())))


def check_timezone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"unknown timezone {name!r} (use an IANA name such as Europe/Paris)") from None


class Window:
    """Weekly ranges in one timezone, asked about instants. No range: always open."""

    def __init__(self, ranges: Iterable[WeeklyRange], tz: str) -> None:
        self.ranges = tuple(ranges)
        self.zone = check_timezone(tz)

    @classmethod
    def from_json(cls, data, tz: str) -> Window:
        return cls(ranges_from_json(data), tz)

    @property
    def always(self) -> bool:
        return not self.ranges

    def _intervals(self, around: datetime) -> list[tuple[datetime, datetime]]:
        """The ranges as merged absolute intervals (UTC) from eight days before ``around`` to nine after."""
        local = around.astimezone(self.zone).date()
        spans = []
        for offset in range(-8, 10):
            day = local + timedelta(days=offset)
            for r in self.ranges:
                if day.weekday() in r.days:
                    end_day = day if r.end > r.start else day + timedelta(days=1)
                    spans.append((self._instant(day, r.start), self._instant(end_day, r.end)))
        spans.sort()
        merged: list[list[datetime]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [(a, b) for a, b in merged]

    def _instant(self, day: date, minutes: int) -> datetime:
        if minutes == 1440:
            day, minutes = day + timedelta(days=1), 0
        return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone).astimezone(dt_timezone.utc)

    def is_open(self, at: datetime) -> bool:
        if self.always:
            return True
        return any(a <= at < b for a, b in self._intervals(at))

    def next_opening(self, at: datetime) -> datetime | None:
        """When the window next opens after ``at`` (in the window's timezone), or None if it never
        closes. While it is open, this is the opening after the coming close."""
        if self.always:
            return None
        horizon = at + timedelta(days=8)
        for a, b in self._intervals(at):
            if a > at and a < horizon:
                return a.astimezone(self.zone)
        return None

    def next_close(self, at: datetime) -> datetime | None:
        """When the window open at ``at`` closes (or, if closed, closes after its next opening);
        None if it never closes."""
        if self.always:
            return None
        horizon = at + timedelta(days=8)
        for a, b in self._intervals(at):
            if b > at:
                return b.astimezone(self.zone) if b < horizon else None
        return None

    def opens_at(self, at: datetime) -> datetime:
        """``at`` if the window is open then, else its next opening: when work asked for at ``at`` may run."""
        if self.is_open(at):
            return at
        opening = self.next_opening(at)
        return opening if opening is not None else at

    def runs_allowed(self, runs: Iterable[datetime]) -> list[tuple[datetime, datetime | None]]:
        """Scheduled starts, each with when its scanning may begin: None when the window is open then,
        else the next opening (in the window's timezone)."""
        return [(run, None if self.is_open(run) else self.opens_at(run)) for run in runs]

    def describe(self) -> str:
        return "; ".join(str(r) for r in self.ranges) if self.ranges else "any time"
