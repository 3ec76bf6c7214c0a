"""Schedules: a django-celery-beat row follows the organization's setting; the watchdog row is set up once."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from orgs.models import AuditEvent
from orgs.schedules import WATCHDOG_NAME, ScheduleError, organization_schedule_set, schedule_task_name
from scans.pipeline import dispatch
from scans.pipeline.sessions import session_start_scheduled


def test_setting_a_schedule_creates_a_beat_row_with_timezone_and_expiry(world):
    organization_schedule_set(org=world.org, crontab="*/10 * * * *", timezone="Europe/Paris", by=world.owner)

    task = PeriodicTask.objects.get(name=schedule_task_name(world.org.pk))
    assert task.task == "scans.tasks.session_start_scheduled"
    assert json.loads(task.kwargs) == {"org_id": world.org.pk}
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("*/10", "*", "Europe/Paris")
    assert task.expire_seconds and task.queue == "orchestration"
    assert AuditEvent.objects.filter(verb="organization.schedule_changed", actor=world.owner).exists()


def test_changing_then_switching_off_the_schedule_changes_then_removes_the_row(world):
    organization_schedule_set(org=world.org, crontab="0 3 * * *")
    organization_schedule_set(org=world.org, crontab="30 4 * * 1")
    assert PeriodicTask.objects.get(name=schedule_task_name(world.org.pk)).crontab.hour == "4"

    organization_schedule_set(org=world.org, crontab="")
    assert not PeriodicTask.objects.filter(name=schedule_task_name(world.org.pk)).exists()


@pytest.mark.parametrize("crontab, timezone, message", [
    ("every day", "UTC", "five crontab fields"),
    ("61 * * * *", "UTC", "invalid crontab"),
    ("0 3 * * *", "Mars/Olympus", "unknown timezone"),
])
def test_a_bad_schedule_is_refused_with_a_clear_message(world, crontab, timezone, message):
    with pytest.raises(ScheduleError, match=message):
        organization_schedule_set(org=world.org, crontab=crontab, timezone=timezone)


def test_setup_periodic_tasks_is_idempotent_and_drops_rows_of_deleted_organizations(world):
    organization_schedule_set(org=world.other_org, crontab="0 * * * *")
    other_pk = world.other_org.pk
    world.other_org.delete()

    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")

    assert PeriodicTask.objects.filter(name=WATCHDOG_NAME, task="scans.tasks.watchdog_sweep").count() == 1
    assert PeriodicTask.objects.get(name=WATCHDOG_NAME).expire_seconds
    assert not PeriodicTask.objects.filter(name=schedule_task_name(other_pk)).exists()


def test_a_scheduled_start_does_not_pile_up_behind_a_running_session(world):
    organization_schedule_set(org=world.org, crontab="*/10 * * * *")
    with dispatch.inline():
        first = session_start_scheduled(org_id=world.org.pk)
        second = session_start_scheduled(org_id=world.org.pk)
    assert first is not None and first.trigger == "schedule"
    assert second is None
