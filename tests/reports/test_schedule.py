"""Scheduled reports: one django-celery-beat row per organization, a report on each tick, e-mailed to members."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django_celery_beat.models import PeriodicTask

from reports.models import Report, ReportSchedule
from reports.services import (
    report_email_send,
    report_generate,
    report_schedule_run,
    report_schedule_save,
    schedule_task_name,
)
from tests.factories import UserFactory


def test_saving_a_schedule_creates_its_beat_row(world):
    schedule = report_schedule_save(org=world.org, crontab="0 6 * * 1", timezone_name="Europe/Paris",
                                    recipients=[world.owner, world.viewer], by=world.owner)

    task = PeriodicTask.objects.get(name=schedule_task_name(world.org.pk))
    assert schedule.periodic_task == task and task.enabled
    assert task.task == "reports.tasks.report_schedule_run" and task.queue == "reports"
    assert json.loads(task.kwargs) == {"schedule_id": schedule.pk}
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "6", "1")
    assert str(task.crontab.timezone) == "Europe/Paris"
    assert world.org.audit_events.filter(verb="report_schedule.saved").count() == 1


def test_saving_again_changes_the_same_rows(world):
    report_schedule_save(org=world.org, crontab="0 6 * * 1", recipients=[world.owner])
    schedule = report_schedule_save(org=world.org, crontab="30 7 * * *", format="html", enabled=False, recipients=[])

    assert ReportSchedule.objects.count() == 1 and PeriodicTask.objects.filter(name__contains="report schedule").count() == 1
    task = PeriodicTask.objects.get(name=schedule_task_name(world.org.pk))
    assert not task.enabled and task.crontab.hour == "7" and schedule.format == "html"
    assert list(schedule.recipients.all()) == []


def test_a_bad_crontab_or_a_stranger_as_recipient_is_refused(world):
    with pytest.raises(ValidationError, match="five crontab fields"):
        report_schedule_save(org=world.org, crontab="weekly")
    with pytest.raises(ValidationError, match="members of the organization only"):
        report_schedule_save(org=world.org, crontab="0 6 * * 1", recipients=[world.outsider])
    assert not PeriodicTask.objects.filter(name=schedule_task_name(world.org.pk)).exists()


def test_a_tick_requests_the_organization_report_and_a_disabled_schedule_does_nothing(world):
    schedule = report_schedule_save(org=world.org, crontab="0 6 * * 1", format="csv")
    report = report_schedule_run(schedule_id=schedule.pk)
    assert (report.kind, report.format, report.trigger, report.schedule) == ("organization", "csv", "schedule", schedule)

    report_schedule_save(org=world.org, crontab="0 6 * * 1", enabled=False)
    assert report_schedule_run(schedule_id=schedule.pk) is None


def test_the_scheduled_report_is_emailed_with_the_pdf_attached(estate, world):
    estate.org.findings.exclude(pk=estate.log4shell.pk).delete()  # a short PDF
    schedule = report_schedule_save(org=world.org, crontab="0 6 * * 1", format="pdf",
                                    recipients=[world.owner, world.viewer])
    report = report_generate(report_id=report_schedule_run(schedule_id=schedule.pk).pk)
    assert report.status == "ready", report.error

    assert report_email_send(report_id=report.pk) == 1

    message = mail.outbox[0]
    assert sorted(message.to) == sorted([world.owner.email, world.viewer.email])
    assert message.subject.startswith("[Watchpost] Acme: organization report ")
    assert "Score: 52 D" in message.body and "Open findings: 1" in message.body
    (name, content, mimetype), = message.attachments
    assert name == report.file_name and mimetype == "application/pdf" and content.startswith(b"%PDF")


def test_a_report_over_the_attachment_limit_is_sent_as_a_link(world, settings):
    settings.WATCHPOST_REPORT_EMAIL_ATTACH_MAX_BYTES = 10
    settings.WATCHPOST_BASE_URL = "https://watchpost.example"
    schedule = report_schedule_save(org=world.org, crontab="0 6 * * 1", format="csv", recipients=[world.analyst])
    report = report_generate(report_id=report_schedule_run(schedule_id=schedule.pk).pk)

    report_email_send(report_id=report.pk)

    message = mail.outbox[0]
    assert message.attachments == []
    assert f"https://watchpost.example/o/acme/reports/{report.pk}/download/" in message.body
    assert "members only" in message.body


def test_someone_who_left_the_organization_is_not_emailed(world):
    leaver = UserFactory(username="leaver")
    world.org.memberships.create(user=leaver, role="viewer")
    schedule = report_schedule_save(org=world.org, crontab="0 6 * * 1", format="csv", recipients=[leaver, world.owner])
    world.org.memberships.filter(user=leaver).delete()
    report = report_generate(report_id=report_schedule_run(schedule_id=schedule.pk).pk)

    report_email_send(report_id=report.pk)

    assert mail.outbox[0].to == [world.owner.email]


def test_a_ready_scheduled_report_queues_its_email(world, django_capture_on_commit_callbacks):
    schedule = report_schedule_save(org=world.org, crontab="0 6 * * 1", format="json", recipients=[world.owner])
    report = Report.objects.create(org=world.org, kind="organization", format="json", schedule=schedule)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report_generate(report_id=report.pk)
    assert len(callbacks) == 1  # the e-mail task, published after commit
