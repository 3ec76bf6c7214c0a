"""Generating a report: stored through the default storage when it renders, a clear error and an intervention
when it does not, never a half-written file; safe to run twice."""

from __future__ import annotations

from pathlib import Path

from interventions.models import Intervention
from reports.models import Report
from reports.services import report_generate, report_request, session_report_write


def files_under(root) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()] if Path(root).exists() else []


def test_a_report_is_stored_through_the_default_storage_with_its_download_name(estate, media):
    report = report_request(org=estate.org, kind="organization", format="csv", by=estate.org.memberships.first().user)
    assert report.status == Report.Status.PENDING

    report = report_generate(report_id=report.pk)

    assert report.status == Report.Status.READY and report.error == ""
    assert report.file_name.startswith("watchpost-acme-organization-") and report.file_name.endswith(".csv")
    stored = files_under(media)
    assert [p.name for p in stored] == [report.file_name]
    assert report.size == stored[0].stat().st_size and report.content_type == "text/csv; charset=utf-8"
    assert report.started_at <= report.finished_at


def test_a_render_over_the_size_limit_fails_with_a_clear_error_an_intervention_and_no_file(estate, media, settings):
    settings.WATCHPOST_REPORT_MAX_BYTES = 500
    report = Report.objects.create(org=estate.org, kind="organization", format="json")

    report = report_generate(report_id=report.pk)

    assert report.status == Report.Status.FAILED
    assert "over the limit of 500 bytes (WATCHPOST_REPORT_MAX_BYTES); nothing was stored" in report.error
    assert not report.file and report.size is None and report.finished_at is not None
    assert files_under(media) == []
    intervention = Intervention.objects.get(kind=Intervention.Kind.REPORT_FAILED)
    assert intervention.subject == f"report:{report.pk}" and intervention.state == "open"
    assert intervention.title == f"Organization report #{report.pk} (JSON) failed to render"
    assert intervention.context["error"] == report.error and intervention.context["format"] == "json"


def test_a_storage_that_cannot_be_written_fails_the_report_cleanly(estate, tmp_path, settings):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the storage expects a folder")
    settings.MEDIA_ROOT = blocker
    report = Report.objects.create(org=estate.org, kind="node", node=estate.web, format="pdf")

    report = report_generate(report_id=report.pk)

    assert report.status == Report.Status.FAILED
    assert report.error.startswith(("NotADirectoryError", "FileExistsError")), report.error
    assert Intervention.objects.filter(kind="report_failed", subject=f"report:{report.pk}", node=estate.web).exists()


def test_generating_twice_renders_once(estate, media):
    report = Report.objects.create(org=estate.org, kind="organization", format="csv")
    first = report_generate(report_id=report.pk)

    again = report_generate(report_id=report.pk)

    assert again.status == Report.Status.READY and again.file.name == first.file.name
    assert len(files_under(media)) == 1


def test_the_pipeline_session_report_carries_the_summary_and_its_json_file(estate):
    session = estate.session
    session.stage = "reporting"
    session.status = "running"
    session.save()
    running = session_report_write(session=session)
    assert running.status == Report.Status.READY and running.summary["status"] == "running" and not running.file

    session.status, session.stage = "succeeded", "done"
    session.save()
    finished = session_report_write(session=session)

    assert finished.pk == running.pk and Report.objects.filter(session=session).count() == 1
    assert finished.status == Report.Status.READY and finished.summary["status"] == "succeeded"
    assert finished.file_name.endswith(".json") and finished.trigger == Report.Trigger.PIPELINE
    assert b'"session":{' in finished.file.open("rb").read()


def test_people_may_ask_for_more_session_reports_than_the_pipeline_writes(estate):
    estate.session.status = "succeeded"
    session_report_write(session=estate.session)
    for _ in range(2):
        report_request(org=estate.org, kind="session", format="json", session=estate.session)

    assert Report.objects.filter(session=estate.session, format="json").count() == 3
