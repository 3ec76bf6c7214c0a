"""Writes about reports: request, generate (render and store), the pipeline's session report,
schedules and their e-mails.

A report is rendered into a temporary file and saved to Django's default storage only
when the render finished: a failing render leaves a clear error on the row and an
intervention, never a half-written file.
"""

from __future__ import annotations

import json
import tempfile
import uuid
import zoneinfo
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from interventions.models import Intervention
from interventions.services import intervention_open
from orgs.audit import audit_record
from orgs.models import Membership
from orgs.schedules import ScheduleError, parse_crontab
from reports import content
from reports.models import Report, ReportSchedule
from reports.renderers import RENDERERS
from scans.pipeline.dispatch import enqueue
from scans.pipeline.sessions import session_summary

logger = structlog.get_logger(__name__)

GENERATE_TASK = "reports.tasks.report_generate_run"
EMAIL_TASK = "reports.tasks.report_email_run"
SCHEDULE_TASK = "reports.tasks.report_schedule_run"
# A render that has been "running" this long was lost with its worker: it may be claimed again.
STALE_RENDER = timedelta(minutes=30)
GENERATE_LIMITS = {"soft_time_limit": 1800, "time_limit": 1860}


class ReportError(ValueError):
    """A request that cannot become a report (a node report without a node...)."""


def max_bytes() -> int:
    return int(getattr(settings, "WATCHPOST_REPORT_MAX_BYTES", 2 * 1024**3))


def attach_max_bytes() -> int:
    return int(getattr(settings, "WATCHPOST_REPORT_EMAIL_ATTACH_MAX_BYTES", 10 * 1024**2))


# --- request and generate --------------------------------------------------------------------------


def report_request(*, org, kind: str, format: str, node=None, session=None, by=None, token=None,
                   trigger: str = Report.Trigger.CONSOLE, schedule=None, ip: str | None = None,
                   correlation_id: str = "") -> Report:
    """Ask for a report; it is rendered on the ``reports`` queue. ``node``/``session`` must belong to ``org``."""
    if kind not in Report.Kind.values:
        raise ReportError(f"Unknown report kind {kind!r}.")
    if format not in Report.Format.values:
        raise ReportError(f"Unknown report format {format!r}.")
    if kind == Report.Kind.NODE and node is None:
        raise ReportError("A node report needs a node.")
    if kind == Report.Kind.SESSION and session is None:
        raise ReportError("A session report needs a session.")
    for subject in (node, session):
        if subject is not None and subject.org_id != org.pk:
            raise ReportError("The report's subject belongs to another organization.")
    correlation_id = correlation_id or f"report-{uuid.uuid4().hex}"
    with transaction.atomic():
        report = Report.objects.create(
            org=org, kind=kind, format=format, trigger=trigger, schedule=schedule,
            node=node if kind == Report.Kind.NODE else None,
            session=session if kind == Report.Kind.SESSION else None,
            requested_by=by if by is not None and by.is_authenticated else None, requested_by_token=token,
            correlation_id=correlation_id,
        )
        audit_record(org=org, verb="report.requested", target=report, actor=by, token=token, ip=ip,
                     changes={"kind": kind, "format": format, "subject": report.subject_label})
        enqueue(GENERATE_TASK, kwargs={"report_id": report.pk}, correlation_id=correlation_id, **GENERATE_LIMITS)
    logger.info("report.requested", report_id=report.pk, kind=kind, format=format)
    return report


def report_generate(*, report_id: int) -> Report | None:
    """Render the report, store the file and record the outcome on the row. Safe to run twice.

    Claims the row (pending → running, or a render lost with its worker) with a conditional
    UPDATE; a second delivery finds nothing to claim and returns. Never raises for a render
    failure: the row says what went wrong and an intervention asks a person to look.
    """
    now = timezone.now()
    claimable = Report.objects.filter(pk=report_id).filter(
        Q(status=Report.Status.PENDING) | Q(status=Report.Status.RUNNING, started_at__lt=now - STALE_RENDER)
    )
    if not claimable.update(status=Report.Status.RUNNING, started_at=now, error=""):
        return Report.objects.filter(pk=report_id).first()
    report = Report.objects.select_related("org", "node", "session").get(pk=report_id)
    renderer = RENDERERS[report.format]
    stored_name = ""
    try:
        previous = content.previous_comparable(report)
        report.period_start = previous.created_at if previous else None
        report.period_end = now
        changes, state = content.finding_state_changes(report, previous)
        file_name = download_name(report, renderer.extension)
        with tempfile.TemporaryFile() as out:
            info = renderer.render(report=report, changes=changes, out=out)
            size = out.tell()
            if size > max_bytes():
                raise ReportError(f"The rendered file is {size} bytes, over the limit of {max_bytes()} bytes "
                                  "(WATCHPOST_REPORT_MAX_BYTES); nothing was stored.")
            out.seek(0)
            stored_name = report.file.storage.save(storage_path(report, file_name), File(out, name=file_name))
        with transaction.atomic():
            report.file.name = stored_name
            report.file_name = file_name
            report.size = size
            report.content_type = renderer.content_type
            report.pages = info.get("pages")
            report.summary = {**(report.summary or {}), "figures": _figures(info, changes)}
            report.changes = changes
            report.finding_state = state
            report.status = Report.Status.READY
            report.finished_at = timezone.now()
            report.save(update_fields=["file", "file_name", "size", "content_type", "pages", "summary", "changes",
                                       "finding_state", "period_start", "period_end", "status", "finished_at"])
            if report.schedule_id:
                enqueue(EMAIL_TASK, kwargs={"report_id": report.pk}, correlation_id=report.correlation_id)
    except Exception as exc:  # noqa: BLE001 - any failure of a render becomes a row error and an intervention
        if stored_name:
            report.file.storage.delete(stored_name)
        _report_failed(report=report, error=f"{type(exc).__name__}: {exc}")
        return report
    logger.info("report.ready", report_id=report.pk, format=report.format, size=report.size, pages=report.pages,
                seconds=round((report.finished_at - now).total_seconds(), 3))
    return report


def _figures(info: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    figures = {k: v for k, v in info.items() if v is not None}
    figures["changes"] = changes.get("counts", {}) if changes.get("previous") else None
    return figures


def _report_failed(*, report: Report, error: str) -> None:
    error = error[:4000]
    Report.objects.filter(pk=report.pk).update(status=Report.Status.FAILED, error=error, finished_at=timezone.now(),
                                                file="", size=None)
    report.refresh_from_db()
    intervention_open(
        org=report.org, kind=Intervention.Kind.REPORT_FAILED, subject=f"report:{report.pk}",
        title=f"{report.get_kind_display()} report #{report.pk} ({report.get_format_display()}) failed to render",
        context={"error": error, "report_id": report.pk, "format": report.format, "kind": report.kind,
                 "correlation_id": report.correlation_id},
        session=report.session if report.session_id else None, node=report.node if report.node_id else None,
    )
    logger.warning("report.failed", report_id=report.pk, error=error)


def download_name(report: Report, extension: str) -> str:
    """``watchpost-acme-organization-20261130-2140.pdf``: says what it is when it lands in a downloads folder."""
    subject = ""
    if report.kind == Report.Kind.NODE and report.node_id:
        subject = "-" + slugify(report.node.address.replace(".", "-").replace(":", "-"))[:60]
    elif report.kind == Report.Kind.SESSION and report.session_id:
        subject = f"-{report.session_id}"
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return f"watchpost-{report.org.slug}-{report.kind}{subject}-{stamp}.{extension}"


def storage_path(report: Report, file_name: str) -> str:
    # A random directory: even a storage that is public by mistake does not expose guessable names.
    return f"reports/{report.org_id}/{uuid.uuid4().hex}/{file_name}"


# --- the pipeline's session report ----------------------------------------------------------------


def session_report_write(*, session) -> Report:
    """The session's JSON report, written once and rewritten in place (reporting may run twice).

    Called by the pipeline's reporting stage, before and after the session finishes: the row
    always carries the session summary; once the session is finished the JSON file is rendered
    here, on the ``reports`` queue the stage runs on.
    """
    defaults = {"org": session.org, "summary": session_summary(session=session), "error": "",
                "correlation_id": session.correlation_id}
    if session.is_finished:
        defaults["status"] = Report.Status.PENDING
    else:
        defaults.update(status=Report.Status.READY, finished_at=timezone.now())
    report, _ = Report.objects.update_or_create(
        session=session, kind=Report.Kind.SESSION, format=Report.Format.JSON, trigger=Report.Trigger.PIPELINE,
        defaults=defaults,
    )
    if session.is_finished:
        report = report_generate(report_id=report.pk) or report
    return report


# --- schedules and e-mail ---------------------------------------------------------------------------


def schedule_task_name(org_id: int) -> str:
    return f"watchpost: report schedule of organization {org_id}"


def report_schedule_save(*, org, crontab: str, format: str = Report.Format.PDF, timezone_name: str = "UTC",
                         enabled: bool = True, recipients=(), by=None, ip: str | None = None) -> ReportSchedule:
    """Create or change the organization's recurring report and its beat row. Idempotent."""
    crontab = " ".join((crontab or "").split())
    try:
        fields = parse_crontab(crontab)
    except ScheduleError as exc:
        raise ValidationError({"crontab": str(exc)}) from None
    try:
        zoneinfo.ZoneInfo(timezone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError({"timezone": f"Unknown timezone {timezone_name!r}."}) from None
    if format not in Report.Format.values:
        raise ValidationError({"format": f"Unknown format {format!r}."})
    recipients = list(recipients)
    members = set(Membership.objects.filter(org=org, user__in=recipients).values_list("user_id", flat=True))
    if any(user.pk not in members for user in recipients):
        raise ValidationError({"recipients": "Reports are e-mailed to members of the organization only."})
    with transaction.atomic():
        schedule, created = ReportSchedule.objects.select_for_update().get_or_create(org=org)
        old = {"crontab": schedule.crontab, "format": schedule.format, "enabled": schedule.enabled}
        schedule.kind = Report.Kind.ORGANIZATION
        schedule.crontab, schedule.format, schedule.crontab_timezone, schedule.enabled = (
            crontab, format, timezone_name, enabled)
        cron, _ = CrontabSchedule.objects.get_or_create(timezone=timezone_name, **fields)
        task, _ = PeriodicTask.objects.update_or_create(
            name=schedule_task_name(org.pk),
            defaults={"task": SCHEDULE_TASK, "crontab": cron, "interval": None, "queue": "reports",
                      "kwargs": json.dumps({"schedule_id": schedule.pk}), "enabled": enabled,
                      # A missed tick is not worth a backlog: the next one comes.
                      "expire_seconds": 3600,
                      "description": f"{format.upper()} report of {org.slug} ({crontab} {timezone_name})"},
        )
        schedule.periodic_task = task
        schedule.save()
        schedule.recipients.set(recipients)
        audit_record(org=org, verb="report_schedule.saved", target=schedule, actor=by, ip=ip,
                     changes={"before": None if created else old,
                              "after": {"crontab": crontab, "format": format, "enabled": enabled},
                              "recipients": sorted(u.username for u in recipients)})
    return schedule


def report_schedule_run(*, schedule_id: int) -> Report | None:
    """Beat fired: ask for the organization's scheduled report (e-mailed once rendered)."""
    schedule = ReportSchedule.objects.select_related("org").filter(pk=schedule_id, enabled=True).first()
    if schedule is None:
        return None
    return report_request(org=schedule.org, kind=Report.Kind.ORGANIZATION, format=schedule.format,
                          trigger=Report.Trigger.SCHEDULE, schedule=schedule)


def report_email_send(*, report_id: int) -> int:
    """E-mail a ready scheduled report to its schedule's recipients: attached, or a link when too large."""
    report = Report.objects.select_related("org", "schedule").filter(pk=report_id, status=Report.Status.READY).first()
    if report is None or report.schedule is None:
        return 0
    members = Membership.objects.filter(org=report.org).values_list("user_id", flat=True)
    to = sorted({u.email for u in report.schedule.recipients.filter(pk__in=members) if u.email})
    if not to:
        return 0
    link = absolute_url(reverse("reports:download", kwargs={"slug": report.org.slug, "report_id": report.pk}))
    figures = (report.summary or {}).get("figures", {})
    lines = [
        f"The {report.get_kind_display().lower()} report of {report.org.name} is ready.",
        "",
        f"Score: {figures.get('score', '–')} {figures.get('grade') or ''}".rstrip(),
        f"Open findings: {figures.get('open_findings', '–')}",
    ]
    counts = (report.changes or {}).get("counts") if (report.changes or {}).get("previous") else None
    if counts:
        lines.append("Since the previous report: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()))
    attach = report.size is not None and report.size <= attach_max_bytes()
    lines += ["", f"The report is attached ({report.file_name})." if attach else
              f"The report is too large to attach ({report.size} bytes); download it (members only): {link}",
              "", f"All reports: {absolute_url(reverse('reports:list', kwargs={'slug': report.org.slug}))}"]
    message = EmailMessage(
        subject=f"[Watchpost] {report.org.name}: {report.get_kind_display().lower()} report "
                f"{report.created_at:%Y-%m-%d}",
        body="\n".join(lines), to=to,
    )
    if attach:
        with report.file.open("rb") as fh:
            message.attach(report.file_name, fh.read(), report.content_type.split(";")[0])
    sent = message.send()
    audit_record(org=report.org, verb="report.emailed", target=report, changes={"to": to, "attached": attach})
    return sent


def absolute_url(path: str) -> str:
    base = getattr(settings, "WATCHPOST_BASE_URL", "") or "http://localhost:8000"
    return base.rstrip("/") + path
