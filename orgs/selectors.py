"""Reads about organizations, members, invitations, tokens and the audit trail.

Always scoped to a user or an organization.
"""

from __future__ import annotations

import io
import json
import zoneinfo
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from config.csv_cells import csv_writer
from config.operations import WORKER_ALIVE_WITHIN, queue_depths
from orgs.models import ApiToken, AuditEvent, Invitation, Membership, Organization, Zone, secret_digest


def organization_list_for_user(*, user):
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name")


def membership_list_for_org(*, org):
    return Membership.objects.filter(org=org).select_related("user").order_by("user__username")


def invitation_list_pending(*, org):
    return Invitation.objects.pending().filter(org=org).select_related("invited_by").order_by("-created_at")


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation a raw token designates, whatever its state, or None (looked up by its SHA-256)."""
    if not token or len(token) > 200:
        return None
    return Invitation.objects.select_related("org", "invited_by").filter(token_hash=secret_digest(token)).first()


def api_token_list_for_org(*, org):
    return ApiToken.objects.filter(org=org).select_related("created_by").order_by("-created_at")


# -- audit log ---------------------------------------------------------------------


def audit_event_list(*, org, actor: str = "", verb: str = "", since: date | None = None, until: date | None = None):
    """The organization's audit trail, newest first. ``actor`` is "user:<id>" or "token:<id>";
    ``verb`` matches exactly or, ending in ".", as a prefix ("finding." = every finding verb)."""
    events = AuditEvent.objects.filter(org=org).select_related("actor", "token").order_by("-created_at", "-pk")
    kind, _, pk = actor.partition(":")
    if kind == "user" and pk.isdigit():
        events = events.filter(actor_id=int(pk))
    elif kind == "token" and pk.isdigit():
        events = events.filter(token_id=int(pk))
    if verb:
        events = events.filter(verb__startswith=verb) if verb.endswith(".") else events.filter(verb=verb)
    tz = timezone.get_current_timezone()
    if since:
        events = events.filter(created_at__gte=datetime.combine(since, time.min, tzinfo=tz))
    if until:
        events = events.filter(created_at__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=tz))
    return events


# Keys whose two-item list is a change from one value to the other, whatever the verb says
# (an intervention's "state": [None, "open"] is its opening, not a list of two states).
_TRANSITION_KEYS = frozenset({"state", "status", "role", "enabled", "crontab", "timezone"})
# The console page of an event's target, by its model ("app.model"), where it has one.
_TARGET_PAGES = {
    "nodes.node": "nodes:detail", "scans.finding": "scans:finding_detail",
    "scans.scansession": "scans:session_detail", "interventions.intervention": "interventions:detail",
}


def audit_change_lines(changes: dict, verb: str = "") -> list[tuple[str, str]]:
    """{"role": ["viewer", "admin"]} -> [("role", "viewer → admin")], in words rather than Python's.

    Events of a change ("..._changed") and state-like keys record [before, after] pairs; elsewhere
    a list is a value (a node's two tags are not a change from one to the other).
    """
    def text(value) -> str:
        if isinstance(value, list):
            return ", ".join(map(text, value)) or "–"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dict):
            return ", ".join(f"{k} {text(v)}" for k, v in value.items()) or "–"
        return "–" if value in (None, "") else str(value)

    pairs = verb.endswith("changed")
    lines = []
    for key, value in (changes or {}).items():
        if (pairs or key in _TRANSITION_KEYS) and isinstance(value, list) and len(value) == 2:
            lines.append((key, f"{text(value[0])} → {text(value[1])}"))
        else:
            lines.append((key, text(value)))
    return lines


def audit_target_url(event: AuditEvent, org_slug: str) -> str:
    """The console page of the event's target, or "" for a target without one (a target deleted
    since answers 404 on its page, as any stale link does)."""
    name = _TARGET_PAGES.get(event.target_type)
    if not name or not str(event.target_id).isdigit():
        return ""
    return reverse(name, args=[org_slug, int(event.target_id)])


# -- schedule preview ----------------------------------------------------------------


def schedule_next_runs(*, crontab: str, tz: str, count: int = 5, after: datetime | None = None) -> list[datetime]:
    """The next ``count`` times (aware, in ``tz``) a crontab fires, as celery beat reads it.

    Celery's crontab requires both the day of month and the day of week to match; this
    follows it. Walks days, not minutes, so a yearly schedule costs a few hundred steps.
    Raises ScheduleError for an invalid crontab or timezone.
    """
    from celery.schedules import crontab as celery_crontab

    from orgs.schedules import ScheduleError, parse_crontab

    fields = parse_crontab(crontab)
    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone {tz!r} (use an IANA name such as Europe/Paris)") from None
    spec = celery_crontab(**fields)
    minutes, hours = sorted(spec.minute), sorted(spec.hour)
    start = (after or timezone.now()).astimezone(zone)
    day = start.date()
    runs: list[datetime] = []
    for _ in range(366 * 8):  # long enough for "29 February on a Monday"
        if (day.month in spec.month_of_year and day.day in spec.day_of_month
                and (day.isoweekday() % 7) in spec.day_of_week):
            for hour in hours:
                for minute in minutes:
                    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                    # A wall time skipped by a DST change does not exist: beat does not fire then.
                    if local.astimezone(dt_timezone.utc).astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
                        continue
                    if local > start:
                        runs.append(local)
                        if len(runs) == count:
                            return runs
        day += timedelta(days=1)
    return runs


def schedule_describe(crontab: str) -> str:
    """'*/10 * * * *' -> 'Every 10 minutes' (cron-descriptor, installed with django-celery-beat)."""
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    try:
        return ExpressionDescriptor(crontab, options).get_description()
    except Exception:  # noqa: BLE001 - a description is a nicety; the crontab itself was validated
        return ""


AUDIT_CSV_HEADER = ["time", "actor", "token", "verb", "target_type", "target_id", "target", "changes", "ip",
                    "request_id"]


def audit_csv_rows(events):
    """CSV lines of audit events (header first), read in chunks from the database, one line at a time."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(AUDIT_CSV_HEADER)
    for event in events.iterator(chunk_size=2000):
        yield line([
            event.created_at.isoformat(), event.actor.username if event.actor_id else "",
            f"{event.token.name} ({event.token.prefix}…)" if event.token_id else "", event.verb, event.target_type,
            event.target_id, event.target_repr, json.dumps(event.changes, default=str, sort_keys=True),
            event.ip or "", event.request_id,
        ])



# -- zones ---------------------------------------------------------------------------


def zone_list_for_org(*, org):
    """The organization's zones, each with its node count and the number of its workers alive."""
    alive_since = timezone.now() - WORKER_ALIVE_WITHIN
    return (Zone.objects.filter(org=org).order_by("name")
            .annotate(nodes_count=Count("nodes", distinct=True),
                      workers_alive=Count("workers", filter=Q(workers__seen_at__gte=alive_since), distinct=True)))


def zone_workers_alive(*, zone) -> list:
    """The zone's workers seen recently (their presence rows), by name."""
    return list(zone.workers.filter(seen_at__gte=timezone.now() - WORKER_ALIVE_WITHIN).order_by("hostname"))


def zone_queue_depths(*, zones) -> dict[int, int | None]:
    """Messages waiting in each zone's queue (None: the broker did not answer)."""
    zones = list(zones)
    if not zones:
        return {}
    depths = queue_depths(queues=[zone.queue for zone in zones])
    return {zone.pk: depths.get(zone.queue) for zone in zones}
