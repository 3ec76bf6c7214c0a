"""Scan windows in the pipeline: jobs wait in the database while their zone's window is closed.

Admission (``execution.jobs_pump``) is the one gate: a job of a node whose zone (the zone's
own windows, else the organization's) is closed now is not dispatched; running jobs finish
within their timeout. The sessions so held say until when, as *waiting for window* (nothing
of theirs dispatched yet) or *paused* (they had begun); when the window opens, the next pump
(the watchdog's, on beat, if no job ends to call it) dispatches them and clears the mark. A
session started "now, outside the window" (``window_override``) is never held.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from orgs.models import Organization, Zone
from orgs.windows import Window, WindowError
from scans.models import ScanJob, ScanSession
from scans.pipeline.sessions import stage_deadline_seconds

DEFAULT_ZONE = None


def windows_now() -> datetime:
    """The instant windows are asked about: the clock, one seam a test can set."""
    return timezone.now()


def org_window(org: Organization) -> Window:
    return _window(org.scan_windows, org.schedule_timezone)


def _window(data, tz: str) -> Window:
    try:
        return Window.from_json(data, tz)
    except WindowError:
        # Windows are validated when saved; a row edited by hand into nonsense must not stop scanning silently
        # nor crash admission: it reads as no window.
        return Window((), "UTC")


def zone_windows(org: Organization, *, zoned: bool = True) -> dict[int | None, Window]:
    """Each zone's window (its own, else the organization's), and the default zone's (the organization's).

    ``zoned=False``: the caller knows the organization has no zone, and none is read."""
    windows: dict[int | None, Window] = {DEFAULT_ZONE: org_window(org)}
    if not zoned:
        return windows
    for pk, data in Zone.objects.filter(org=org).values_list("pk", "scan_windows"):
        windows[pk] = _window(data, org.schedule_timezone) if data else windows[DEFAULT_ZONE]
    return windows


def windows_closed(*, org: Organization, at: datetime | None = None, zoned: bool = True) -> dict[int | None, datetime]:
    """Zones (None: the default zone) whose window is closed at ``at``, with when each next opens
    (``zoned``: as :func:`zone_windows`)."""
    at = at or windows_now()
    closed = {}
    for zone, window in zone_windows(org, zoned=zoned).items():
        if not window.is_open(at):
            closed[zone] = window.opens_at(at)
    return closed


def held_by_windows(closed: dict[int | None, datetime]) -> Q | None:
    """The jobs a closed window holds back (of sessions without an override); None when nothing is closed."""
    if not closed:
        return None
    zones = [zone for zone in closed if zone is not DEFAULT_ZONE]
    in_closed = Q(node__zone_id__in=zones) if zones else Q(pk__in=[])
    if DEFAULT_ZONE in closed:
        in_closed |= Q(node__zone__isnull=True)
    return in_closed & Q(session__window_override=False)


def sessions_mark_held(*, org: Organization, closed: dict[int | None, datetime], waiting, now,
                       marked: bool = True) -> None:
    """Say on each session of ``org`` whether its jobs wait for a window, and until when.

    ``waiting`` is the organization's jobs waiting for admission. A session no longer held has its
    mark cleared and its stage's deadline renewed: the time it waited is not the stage's time.
    ``marked=False``: the caller knows no session of ``org`` carries a mark, so none is to be cleared.
    """
    held = held_by_windows(closed)
    if held is None and not marked:
        return
    marks: dict[int, tuple[datetime, bool]] = {}
    if held is not None:
        rows = (waiting.filter(held).exclude(session__status__in=ScanSession.FINISHED)
                .values_list("session_id", "node__zone_id").distinct())
        for session_id, zone in rows:
            opens = closed[zone]  # held: its zone's window (None, the default zone's) is closed
            current = marks.get(session_id)
            marks[session_id] = (min(opens, current[0]) if current else opens, False)
        begun = set(ScanJob.objects.filter(session_id__in=list(marks)).filter(
            ~Q(status=ScanJob.Status.QUEUED) | ~Q(task_id="")).values_list("session_id", flat=True).distinct())
        for session_id, (opens, _) in marks.items():
            ScanSession.objects.filter(pk=session_id).update(window_waiting_until=opens,
                                                            window_paused=session_id in begun, heartbeat_at=now)
    if not marked:
        return
    released = (ScanSession.objects.filter(org=org, window_waiting_until__isnull=False)
                .exclude(pk__in=list(marks)).select_related("profile"))
    for session in released:
        changes = {"window_waiting_until": None, "window_paused": False, "heartbeat_at": now}
        if session.stage_deadline_at is not None:
            changes["stage_deadline_at"] = now + timezone.timedelta(seconds=stage_deadline_seconds(session,
                                                                                                   session.stage))
        ScanSession.objects.filter(pk=session.pk, window_waiting_until__isnull=False).update(**changes)


def session_window_text(session: ScanSession) -> str:
    """'waiting for window, opens …' / 'paused until …' in the organization's timezone; '' when not held."""
    if session.window_waiting_until is None or session.is_finished:
        return ""
    when = session.window_waiting_until.astimezone(org_window(session.org).zone)
    text = f"{when:%a %d %b %Y, %H:%M} {when.tzname()}"
    return f"paused until {text}" if session.window_paused else f"waiting for window, opens {text}"
