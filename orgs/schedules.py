"""An organization's recurring scans, kept as django-celery-beat rows that follow its setting.

The organization's ``schedule_crontab`` / ``schedule_timezone`` are the truth; one
PeriodicTask per organization (named after its id) is created, changed or removed to
match by :func:`organization_schedule_sync`, which every change of the setting calls.
Every scheduled message expires, so a beat that was down does not release a backlog.
"""

from __future__ import annotations

import json
import zoneinfo

import structlog
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from orgs.audit import audit_record
from orgs.models import Organization

logger = structlog.get_logger(__name__)

SCHEDULED_TASK = "scans.tasks.session_start_scheduled"
WATCHDOG_TASK = "scans.tasks.watchdog_sweep"
WATCHDOG_NAME = "watchpost: watchdog sweep"
RETENTION_TASK = "scans.tasks.retention_prune"
RETENTION_NAME = "watchpost: retention prune"
# The exploitation feeds (scans.cve.feed_sync), daily, and the check that flags a feed gone stale.
FEED_SYNC_TASKS = (("watchpost: KEV sync", "scans.tasks.kev_sync", "5", "CISA KEV catalog"),
                   ("watchpost: EPSS sync", "scans.tasks.epss_sync", "35", "FIRST EPSS daily scores"))
FEED_STALENESS_TASK = "scans.tasks.feeds_staleness_check"
FEED_STALENESS_NAME = "watchpost: feed staleness check"
# The findings' trend rows (scans.findings.daily_stats) also for days without a session, import or triage.
DAILY_STATS_TASK = "scans.tasks.finding_daily_stats_refresh"
DAILY_STATS_NAME = "watchpost: findings trend rows"
SLA_SWEEP_TASK = "scans.tasks.sla_sweep"
SLA_SWEEP_NAME = "watchpost: SLA sweep"
SLA_SWEEP_SECONDS = 900
NVD_SYNC_TASK = "scans.tasks.nvd_sync"
NVD_SYNC_NAME = "watchpost: NVD CVE sync"
DIGESTS_TASK = "reports.tasks.notification_digests_send"  # reports.notifications.tasks
DIGESTS_NAME = "watchpost: notification digests"
# A scheduled start not picked up within this long is dropped; the next tick starts one.
SCHEDULE_EXPIRY_SECONDS = 15 * 60


class ScheduleError(ValueError):
    pass


def schedule_task_name(org_id: int) -> str:
    return f"watchpost: scheduled scan of organization {org_id}"


def parse_crontab(text: str) -> dict[str, str]:
    """'*/10 * * * *' -> CrontabSchedule fields; a clear error for anything else."""
    parts = text.split()
    if len(parts) != 5:
        raise ScheduleError(f"a schedule is five crontab fields (minute hour day month weekday), not {text!r}")
    names = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    fields = dict(zip(names, parts))
    from celery.schedules import ParseException, crontab

    try:
        crontab(**fields)
    except (ParseException, ValueError) as exc:
        raise ScheduleError(f"invalid crontab {text!r}: {exc}") from None
    return fields


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone {name!r} (use an IANA name such as Europe/Paris)") from None
    return name


@transaction.atomic
def organization_schedule_set(*, org: Organization, crontab: str, timezone: str = "UTC", by=None) -> Organization:
    """Change (or, with an empty crontab, switch off) the organization's recurring scan."""
    crontab = (crontab or "").strip()
    if crontab:
        parse_crontab(crontab)
    timezone = _check_timezone(timezone or "UTC")
    old = {"crontab": org.schedule_crontab, "timezone": org.schedule_timezone}
    org.schedule_crontab, org.schedule_timezone = crontab, timezone
    org.save(update_fields=["schedule_crontab", "schedule_timezone"])
    organization_schedule_sync(org=org)
    audit_record(org=org, verb="organization.schedule_changed", target=org, actor=by,
                 changes={"crontab": [old["crontab"], crontab], "timezone": [old["timezone"], timezone]})
    return org


@transaction.atomic
def organization_schedule_sync(*, org: Organization) -> PeriodicTask | None:
    """Make the beat row match the organization's setting: create, change or remove it. Idempotent."""
    name = schedule_task_name(org.pk)
    if not org.schedule_crontab:
        PeriodicTask.objects.filter(name=name).delete()
        return None
    fields = parse_crontab(org.schedule_crontab)
    schedule, _ = CrontabSchedule.objects.get_or_create(timezone=_check_timezone(org.schedule_timezone), **fields)
    task, created = PeriodicTask.objects.update_or_create(
        name=name,
        defaults={"task": SCHEDULED_TASK, "crontab": schedule, "interval": None, "kwargs": json.dumps({"org_id": org.pk}),
                  "queue": "orchestration", "expire_seconds": SCHEDULE_EXPIRY_SECONDS, "enabled": True,
                  "description": f"Recurring scan of {org.slug} ({org.schedule_crontab} {org.schedule_timezone})"},
    )
    logger.info("schedule.synced", org=org.slug, created=created, crontab=org.schedule_crontab)
    return task


def organization_schedule_forget(*, org_id: int) -> int:
    """Remove the beat row of an organization that no longer exists."""
    deleted, _ = PeriodicTask.objects.filter(name=schedule_task_name(org_id)).delete()
    return deleted


def _beat_row(name: str, task: str, schedule, *, description: str, expires: int | None = None,
              queue: str = "orchestration") -> None:
    """One deployment-wide beat row, on an interval or a crontab, created or brought up to date."""
    interval, crontab = (schedule, None) if isinstance(schedule, IntervalSchedule) else (None, schedule)
    PeriodicTask.objects.update_or_create(
        name=name, defaults={"task": task, "interval": interval, "crontab": crontab, "queue": queue,
                             "expire_seconds": expires, "enabled": True, "description": description})


def _every(seconds: int) -> IntervalSchedule:
    return IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)[0]


def _daily_utc(*, hour: str, minute: str) -> CrontabSchedule:
    return CrontabSchedule.objects.get_or_create(minute=minute, hour=hour, day_of_week="*", day_of_month="*",
                                                 month_of_year="*", timezone="UTC")[0]


def _hourly_utc(*, minute: str) -> CrontabSchedule:
    return _daily_utc(hour="*", minute=minute)


def periodic_tasks_setup(*, watchdog_seconds: float) -> dict[str, int]:
    """The deployment's beat rows, every organization's schedule row, and no row for a deleted
    organization. Idempotent. Daily work runs off the hour, when schedules cluster."""
    watchdog = max(1, int(watchdog_seconds))
    # A sweep older than its interval is useless: the next one is already due.
    _beat_row(WATCHDOG_NAME, WATCHDOG_TASK, _every(watchdog), expires=watchdog,
              description="Retries stuck jobs and stages once, then opens stage_stuck interventions")
    _beat_row(RETENTION_NAME, RETENTION_TASK, _daily_utc(hour="3", minute="17"),
              description="Prunes raw scan output and old sessions per retention policy")
    # KEV and EPSS publish once a day (EPSS early UTC): fetched at 06:05 and 06:35 UTC.
    for name, task, minute, what in FEED_SYNC_TASKS:
        _beat_row(name, task, _daily_utc(hour="6", minute=minute), expires=6 * 3600,
                  description=f"Downloads the {what} and updates the findings")
    _beat_row(FEED_STALENESS_NAME, FEED_STALENESS_TASK, _every(3600), expires=3600,
              description="Opens feed_stale interventions for feeds without a success for three days")
    # Expired risk acceptances reopen, and newly overdue findings are announced, within a quarter hour.
    _beat_row(SLA_SWEEP_NAME, SLA_SWEEP_TASK, _every(SLA_SWEEP_SECONDS), expires=SLA_SWEEP_SECONDS,
              description="Reopens findings whose risk acceptance expired; announces findings past their SLA")
    # NVD asks clients to spread their load; a missed day is made up by the next run (it syncs from
    # the last success), not by a backlog.
    _beat_row(NVD_SYNC_NAME, NVD_SYNC_TASK, _daily_utc(hour="2", minute="47"), expires=12 * 3600,
              description="Brings the CVE catalog up to date from the NVD CVE API 2.0 (resumes)")
    # Hourly, so that a day's row holds its last hour; at 55 minutes past, clear of the schedules' full hours.
    _beat_row(DAILY_STATS_NAME, DAILY_STATS_TASK, _hourly_utc(minute="55"), queue="scoring", expires=3600,
              description="Writes every organization's findings trend row for today (open, overdue, new, fixed)")
    # Webhook deliveries whose task message was lost (broker down when it was published) go out again.
    _beat_row("watchpost: webhook deliveries sweep", "orgs.tasks.webhook_deliveries_sweep", _every(300),
              queue="reports", expires=300, description="Re-publishes webhook deliveries overdue by five minutes")
    # Each member's digest of what is assigned to them and due, once a day before the working day in Europe.
    _beat_row(DIGESTS_NAME, DIGESTS_TASK, _daily_utc(hour="6", minute="50"), queue="reports", expires=12 * 3600,
              description="E-mails each member the open findings assigned to them that are overdue or due soon")
    synced = 0
    for org in Organization.objects.all():
        organization_schedule_sync(org=org)
        synced += 1
    prefix = schedule_task_name(0)[:-1]
    live = {schedule_task_name(pk) for pk in Organization.objects.values_list("pk", flat=True)}
    orphans = PeriodicTask.objects.filter(name__startswith=prefix).exclude(name__in=live)
    removed, _ = orphans.delete()
    return {"organizations": synced, "removed": removed}
