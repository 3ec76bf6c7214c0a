"""Scan windows read from text and asked about instants, with the clock given by the test."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from orgs.windows import Window, WindowError, parse_range, parse_text, ranges_from_json, to_json, to_text

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")
NIGHTS_AND_WEEKENDS = "Mon-Fri 20:00-06:00\nSat-Sun all day"


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def window(text: str = NIGHTS_AND_WEEKENDS, tz: str = "Europe/Paris") -> Window:
    return Window(parse_text(text), tz)


def test_a_range_past_midnight_is_valid_and_reads_back_as_typed():
    r = parse_range("Mon-Fri 20:00-06:00")
    assert r.days == (0, 1, 2, 3, 4) and (r.start, r.end) == (20 * 60, 6 * 60)
    assert str(r) == "Mon-Fri 20:00-06:00"
    assert to_text(to_json(parse_text(NIGHTS_AND_WEEKENDS))) == NIGHTS_AND_WEEKENDS


def test_day_names_may_be_long_listed_or_in_any_case():
    assert parse_range("monday,Wednesday 09:00-10:00").days == (0, 2)
    assert parse_range("SAT all day").days == (5,)
    assert str(parse_range("Mon 00:00-24:00")) == "Mon all day"


@pytest.mark.parametrize("text, message", [
    ("Mon-Fri 20:00-20:00", "the end equals the start"),
    ("Sun 00:00-00:00", "the end equals the start"),
    ("Mon-Fri 25:00-06:00", "not a time of day"),
    ("Mon-Fri 8pm-6am", "not HH:MM"),
    ("Mon-Fri 20:61-06:00", "not a time of day"),
    ("Fri-Mon 20:00-06:00", "run backwards"),
    ("Someday 10:00-11:00", "unknown day"),
    ("20:00-06:00", "write days then times"),
])
def test_a_malformed_range_is_refused_with_its_reason(text, message):
    with pytest.raises(WindowError, match=message):
        parse_text(text)


def test_the_stored_form_is_validated_like_typed_text():
    assert ranges_from_json([{"days": [5, 6], "start": "00:00", "end": "24:00"}])[0].days == (5, 6)
    assert ranges_from_json([{"days": ["mon"], "start": "20:00", "end": "06:00"}])[0].days == (0,)
    for bad in ([{"days": [7], "start": "20:00", "end": "06:00"}], [{"days": [1], "start": "20:00", "end": "20:00"}],
                [{"days": [], "start": "01:00", "end": "02:00"}], "Mon 10:00-11:00", [{"days": [1]}]):
        with pytest.raises(WindowError):
            ranges_from_json(bad)


def test_an_unknown_timezone_is_refused():
    with pytest.raises(WindowError, match="unknown timezone"):
        window(tz="Mars/Olympus")


def test_no_range_means_always_open_and_never_closing():
    w = window("")
    assert w.is_open(paris(2026, 3, 4, 12, 0)) and w.next_close(paris(2026, 3, 4, 12, 0)) is None
    assert w.next_opening(paris(2026, 3, 4, 12, 0)) is None


def test_a_weekday_afternoon_is_closed_until_eight_in_the_evening():
    w = window()
    wednesday_noon = paris(2026, 3, 4, 12, 0)
    assert not w.is_open(wednesday_noon)
    assert w.next_opening(wednesday_noon) == paris(2026, 3, 4, 20, 0)
    assert w.next_close(wednesday_noon) == paris(2026, 3, 5, 6, 0)


def test_the_night_range_is_open_after_midnight_and_closes_at_six():
    w = window()
    thursday_3am = paris(2026, 3, 5, 3, 0)
    assert w.is_open(thursday_3am)
    assert w.next_close(thursday_3am) == paris(2026, 3, 5, 6, 0)
    assert not w.is_open(paris(2026, 3, 5, 6, 0))  # the end is excluded


def test_friday_night_runs_into_the_weekend_until_sunday_midnight():
    w = window()
    friday_night = paris(2026, 3, 6, 21, 0)
    # Friday 20:00 -> Saturday 06:00 overlaps Saturday-Sunday all day: one stretch, no close on Saturday morning.
    assert w.next_close(friday_night) == paris(2026, 3, 9, 0, 0)
    assert w.next_opening(friday_night) == paris(2026, 3, 9, 20, 0)


def test_a_window_covering_the_whole_week_never_closes():
    w = window("Mon-Sun all day")
    assert w.is_open(paris(2026, 3, 4, 12, 0)) and w.next_close(paris(2026, 3, 4, 12, 0)) is None


def test_openings_follow_the_wall_clock_across_daylight_saving_changes():
    w = window("Sun 01:00-04:00")
    # Paris springs forward on Sunday 29 March 2026 at 02:00: the range lasts two hours that day.
    spring = paris(2026, 3, 29, 0, 30)
    opening, close = w.next_opening(spring), w.next_close(spring)
    assert opening == paris(2026, 3, 29, 1, 0) and close == paris(2026, 3, 29, 4, 0)
    # (In UTC: two aware times in one zone subtract as wall times.)
    assert (close.astimezone(UTC) - opening.astimezone(UTC)).total_seconds() == 2 * 3600
    assert opening.utcoffset().total_seconds() == 3600 and close.utcoffset().total_seconds() == 7200
    # And falls back on 25 October: three wall-clock hours take four.
    autumn = paris(2026, 10, 25, 0, 30)
    assert (w.next_close(autumn).astimezone(UTC) - w.next_opening(autumn).astimezone(UTC)).total_seconds() == 4 * 3600


def test_a_wall_time_in_the_spring_gap_opens_when_that_time_would_have_been():
    w = window("Sun 02:30-05:00")
    opening = w.next_opening(paris(2026, 3, 29, 0, 0))
    # 02:30 does not exist that day; the window opens at 03:30 summer time (the same instant as 02:30 winter time).
    assert opening.astimezone(ZoneInfo("UTC")) == datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("UTC"))


def test_opens_at_is_now_when_open_and_the_next_opening_otherwise():
    w = window()
    assert w.opens_at(paris(2026, 3, 5, 3, 0)) == paris(2026, 3, 5, 3, 0)
    assert w.opens_at(paris(2026, 3, 4, 12, 0)) == paris(2026, 3, 4, 20, 0)
