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
NVD_SYNC_TASK = "scans.tasks.nvd_sync"
NVD_SYNC_NAME = "watchpost: NVD CVE sync"
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


def periodic_tasks_setup(*, watchdog_seconds: float) -> dict[str, int]:
    """The watchdog row, every organization's schedule row, and no row for a deleted organization. Idempotent."""
    every, _ = IntervalSchedule.objects.get_or_create(every=max(1, int(watchdog_seconds)), period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name=WATCHDOG_NAME,
        defaults={"task": WATCHDOG_TASK, "interval": every, "crontab": None, "queue": "orchestration",
                  # A sweep older than its interval is useless: the next one is already due.
                  "expire_seconds": max(1, int(watchdog_seconds)), "enabled": True,
                  "description": "Retries stuck jobs and stages once, then opens stage_stuck interventions"},
    )
    # Retention runs daily at 03:17 UTC (off the hour, when schedules cluster).
    daily, _ = CrontabSchedule.objects.get_or_create(minute="17", hour="3", day_of_week="*", day_of_month="*",
                                                     month_of_year="*", timezone="UTC")
    PeriodicTask.objects.update_or_create(
        name=RETENTION_NAME,
        defaults={"task": RETENTION_TASK, "crontab": daily, "interval": None, "queue": "orchestration",
                  "enabled": True, "description": "Prunes raw scan output and old sessions per retention policy"},
    )
    # KEV and EPSS publish once a day (EPSS early UTC): fetched at 06:05 and 06:35 UTC, off the hour.
    for name, task, minute, what in FEED_SYNC_TASKS:
        at, _ = CrontabSchedule.objects.get_or_create(minute=minute, hour="6", day_of_week="*", day_of_month="*",
                                                      month_of_year="*", timezone="UTC")
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={"task": task, "crontab": at, "interval": None, "queue": "orchestration", "enabled": True,
                      "expire_seconds": 6 * 3600, "description": f"Downloads the {what} and updates the findings"},
        )
    hourly, _ = IntervalSchedule.objects.get_or_create(every=3600, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name=FEED_STALENESS_NAME,
        defaults={"task": FEED_STALENESS_TASK, "interval": hourly, "crontab": None, "queue": "orchestration",
                  "expire_seconds": 3600, "enabled": True,
                  "description": "Opens feed_stale interventions for feeds without a success for three days"},
    )
    # The CVE catalog from NVD, daily at 02:47 UTC (off the hour: NVD asks clients to spread their load).
    nvd_daily, _ = CrontabSchedule.objects.get_or_create(minute="47", hour="2", day_of_week="*", day_of_month="*",
                                                         month_of_year="*", timezone="UTC")
    PeriodicTask.objects.update_or_create(
        name=NVD_SYNC_NAME,
        defaults={"task": NVD_SYNC_TASK, "crontab": nvd_daily, "interval": None, "queue": "orchestration",
                  # A missed day is made up by the next run (it syncs from the last success), not by a backlog.
                  "expire_seconds": 12 * 3600, "enabled": True,
                  "description": "Brings the CVE catalog up to date from the NVD CVE API 2.0 (resumes)"},
    )
    # Webhook deliveries whose task message was lost (broker down when it was published) go out again.
    five_minutes, _ = IntervalSchedule.objects.get_or_create(every=300, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="watchpost: webhook deliveries sweep",
        defaults={"task": "orgs.tasks.webhook_deliveries_sweep", "interval": five_minutes, "crontab": None,
                  "queue": "reports", "expire_seconds": 300, "enabled": True,
                  "description": "Re-publishes webhook deliveries overdue by five minutes"},
    )
    synced = 0
    for org in Organization.objects.all():
        organization_schedule_sync(org=org)
        synced += 1
    prefix = schedule_task_name(0)[:-1]
    live = {schedule_task_name(pk) for pk in Organization.objects.values_list("pk", flat=True)}
    orphans = PeriodicTask.objects.filter(name__startswith=prefix).exclude(name__in=live)
    removed, _ = orphans.delete()
    return {"organizations": synced, "removed": removed}
