"""The reports page, requesting a report, status polling and downloads: who may do what."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from reports.models import Report
from reports.services import report_generate
from tests.factories import NodeFactory


def url(name, *args, slug="acme"):
    return reverse(f"reports:{name}", args=[slug, *args])


def ready_report(org, fmt="csv", **subject) -> Report:
    report = report_generate(report_id=Report.objects.create(org=org, format=fmt, **subject).pk)
    assert report.status == "ready", report.error
    return report


# --- the list -------------------------------------------------------------------------------------


def test_the_reports_page_lists_reports_with_status_and_download_links(estate, login):
    ready = ready_report(estate.org, kind="organization")
    pending = Report.objects.create(org=estate.org, kind="node", node=estate.web, format="pdf")
    client = login(estate.org.memberships.get(role="viewer").user)

    response = client.get(url("list"))

    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="{url("download", ready.pk)}"' in html
    assert f'hx-get="{url("status", pending.pk)}"' in html and 'hx-trigger="every 2s"' in html
    assert "127.0.60.1" in html and "Pending" in html and "Ready" in html
    # Viewers read and download; requesting and scheduling are for others.
    assert 'action="/o/acme/reports/request/"' not in html and 'id="schedule"' not in html


def test_analysts_see_the_request_form_and_owners_the_schedule(world, login):
    html = login(world.analyst).get(url("list")).content.decode()
    assert 'action="/o/acme/reports/request/"' in html and 'id="schedule"' not in html
    html = login(world.owner).get(url("list")).content.decode()
    assert 'id="schedule"' in html and "Save schedule" in html


def test_an_empty_reports_page_says_what_to_do(world, login):
    assert "No reports yet. Request one above" in login(world.analyst).get(url("list")).content.decode()


@pytest.mark.parametrize("rows", [10, 1000])
def test_the_reports_page_reads_the_same_number_of_queries_with_10_and_1000_reports(world, login, rows,
                                                                                    django_assert_num_queries):
    node = NodeFactory(org=world.org)
    Report.objects.bulk_create(
        [Report(org=world.org, kind="node" if i % 2 else "organization", node=node if i % 2 else None,
                format="pdf", status="ready", requested_by=world.analyst, size=1000, file=f"reports/x/{i}.pdf",
                finding_state={str(n): ["open", "high"] for n in range(50)}) for i in range(rows)]
    )
    client = login(world.analyst)
    # session, user, membership, reports count, reports page, the switcher's organizations, open interventions.
    with django_assert_num_queries(7):
        assert client.get(url("list")).status_code == 200


def test_the_list_is_for_members_only(world, login, client):
    assert client.get(url("list")).status_code == 302
    assert client.get(url("list"))["Location"].startswith(reverse("login"))
    assert login(world.outsider).get(url("list")).status_code == 404
    assert login(world.viewer).post(url("list")).status_code == 405


# --- requesting -----------------------------------------------------------------------------------


def test_an_analyst_requests_an_organization_report(world, login):
    response = login(world.analyst).post(url("request"), {"kind": "organization", "format": "pdf"})

    assert response.status_code == 302 and response["Location"] == url("list")
    report = Report.objects.get()
    assert (report.kind, report.format, report.status, report.trigger) == ("organization", "pdf", "pending", "console")
    assert report.requested_by == world.analyst
    assert world.org.audit_events.filter(verb="report.requested", target_id=str(report.pk)).exists()


def test_a_node_report_is_requested_by_address_or_number(estate, login):
    client = login(estate.org.memberships.get(role="analyst").user)
    client.post(url("request"), {"kind": "node", "format": "html", "node": "127.0.60.2"})
    client.post(url("request"), {"kind": "node", "format": "csv", "node": str(estate.web.pk)})
    client.post(url("request"), {"kind": "session", "format": "json", "session": f"#{estate.session.pk}"})

    assert list(Report.objects.order_by("pk").values_list("kind", "node", "session")) == [
        ("node", estate.db.pk, None), ("node", estate.web.pk, None), ("session", None, estate.session.pk)]


def test_a_subject_of_another_organization_is_refused(world, login):
    foreign = NodeFactory(org=world.other_org, address="127.0.61.9")

    response = login(world.analyst).post(url("request"), {"kind": "node", "format": "pdf", "node": str(foreign.pk)})

    assert response.status_code == 400 and "No node" in response.content.decode()
    assert not Report.objects.exists()


def test_a_node_report_needs_a_node(world, login):
    response = login(world.analyst).post(url("request"), {"kind": "node", "format": "pdf"})
    assert response.status_code == 400 and "Name the node" in response.content.decode()


def test_requesting_is_a_write(world, login, client):
    assert login(world.viewer).post(url("request"), {"kind": "organization", "format": "pdf"}).status_code == 403
    assert login(world.outsider).post(url("request"), {"kind": "organization", "format": "pdf"}).status_code == 404
    assert login(world.analyst).get(url("request")).status_code == 405
    assert not Report.objects.exists()


def test_requesting_anonymously_goes_to_the_login_page(world, client):
    response = client.post(url("request"), {"kind": "organization", "format": "pdf"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_requesting_needs_the_csrf_token(world):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.analyst)
    assert strict.post(url("request"), {"kind": "organization", "format": "pdf"}).status_code == 403


def test_the_request_button_partial_posts_the_subject(estate, rf):
    from django.template.loader import render_to_string

    membership = estate.org.memberships.get(role="analyst")
    html = render_to_string("reports/partials/request_button.html",
                            {"kind": "node", "subject": estate.web, "org": estate.org, "membership": membership})
    assert 'action="/o/acme/reports/request/"' in html and f'name="node" value="{estate.web.pk}"' in html
    viewer = estate.org.memberships.get(role="viewer")
    assert "<form" not in render_to_string("reports/partials/request_button.html",
                                           {"kind": "node", "subject": estate.web, "org": estate.org, "membership": viewer})


# --- status polling -------------------------------------------------------------------------------


def test_the_status_row_stops_polling_once_the_report_is_ready(estate, login):
    report = Report.objects.create(org=estate.org, kind="organization", format="csv")
    client = login(estate.org.memberships.get(role="viewer").user)
    assert 'hx-trigger="every 2s"' in client.get(url("status", report.pk)).content.decode()

    report_generate(report_id=report.pk)

    html = client.get(url("status", report.pk)).content.decode()
    assert "hx-trigger" not in html and "Download" in html


def test_the_status_row_checklist(world, login, client):
    report = Report.objects.create(org=world.org, kind="organization", format="csv")
    assert client.get(url("status", report.pk)).status_code == 302
    assert login(world.outsider).get(url("status", report.pk)).status_code == 404
    assert login(world.viewer).post(url("status", report.pk)).status_code == 405
    assert login(world.viewer).get(url("status", 999999)).status_code == 404


# --- downloads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,content_type", [("pdf", "application/pdf"), ("csv", "text/csv; charset=utf-8"),
                                              ("json", "application/json"), ("html", "text/html; charset=utf-8"),
                                              ("sarif", "application/sarif+json")])
def test_a_viewer_downloads_a_report_with_its_type_and_file_name(estate, login, fmt, content_type):
    if fmt == "pdf":
        estate.org.findings.exclude(pk=estate.redis.pk).delete()  # a one-page PDF is enough here
    report = ready_report(estate.org, fmt, kind="organization")

    response = login(estate.org.memberships.get(role="viewer").user).get(url("download", report.pk))

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{report.file_name}"'
    assert response["Cache-Control"] == "private, no-store"
    body = b"".join(response.streaming_content)
    assert len(body) == report.size


def test_another_organization_cannot_download_a_report(estate, login):
    report = ready_report(estate.org)
    assert login(estate.org.memberships.model.objects.get(org__slug="globex").user).get(
        url("download", report.pk)).status_code == 404
    assert login(estate.org.memberships.model.objects.get(org__slug="globex").user).get(
        url("download", report.pk, slug="globex")).status_code == 404


def test_an_anonymous_download_goes_to_the_login_page(estate, client):
    report = ready_report(estate.org)
    response = client.get(url("download", report.pk))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_report_without_a_file_has_nothing_to_download(world, login):
    report = Report.objects.create(org=world.org, kind="organization", format="pdf")
    client = login(world.viewer)
    assert client.get(url("download", report.pk)).status_code == 404
    assert client.post(url("download", report.pk)).status_code == 405


def test_report_files_are_not_under_a_public_url(estate, settings):
    report = ready_report(estate.org)
    # The storage's own URL would be a guessable public path if MEDIA_URL were served; nothing serves it.
    from django.urls import Resolver404, resolve

    with pytest.raises(Resolver404):
        resolve("/" + settings.MEDIA_URL.lstrip("/") + report.file.name)
    assert report.file.name.startswith("reports/") and len(report.file.name.split("/")[2]) == 32  # a random folder


# --- schedule form --------------------------------------------------------------------------------


def test_an_owner_schedules_the_weekly_report_for_members(world, login):
    response = login(world.owner).post(url("schedule"), {
        "enabled": "on", "crontab": "0 7 * * 1", "timezone": "Europe/Paris", "format": "pdf",
        "recipients": [world.owner.pk, world.viewer.pk]})

    assert response.status_code == 302
    schedule = world.org.report_schedule
    assert schedule.crontab == "0 7 * * 1" and schedule.periodic_task.enabled
    assert set(schedule.recipients.all()) == {world.owner, world.viewer}


def test_a_bad_crontab_is_explained(world, login):
    response = login(world.owner).post(url("schedule"), {"crontab": "every monday", "timezone": "UTC", "format": "pdf"})
    assert response.status_code == 400 and "five crontab fields" in response.content.decode()


def test_scheduling_is_for_owners_and_admins(world, login, client):
    data = {"crontab": "0 7 * * 1", "timezone": "UTC", "format": "pdf"}
    assert login(world.analyst).post(url("schedule"), data).status_code == 403
    assert login(world.outsider).post(url("schedule"), data).status_code == 404
    assert login(world.owner).get(url("schedule")).status_code == 405
    client.logout()
    assert Client().post(url("schedule"), data).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.owner)
    assert strict.post(url("schedule"), data).status_code == 403
