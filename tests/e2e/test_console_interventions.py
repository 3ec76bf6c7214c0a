"""In a browser: resolve an intervention in place and watch the navigation's open count drop."""

import pytest
from playwright.sync_api import expect

from interventions.models import Intervention
from scans.models import ScanJob, ScanSession
from tests.e2e.browser import log_in, shot
from tests.factories import NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_analyst_resolves_an_intervention_in_place_and_the_count_drops(page, live_server, world):
    # profile=None: a transactional test flushes the built-in profiles the migrations made.
    session = ScanSessionFactory(org=world.org, profile=None, status=ScanSession.Status.PARTIAL,
                                 stage=ScanSession.Stage.DONE)
    job = ScanJobFactory(session=session, node=NodeFactory(org=world.org, address="127.0.0.9"), scanner="tls",
                         status=ScanJob.Status.FAILED, attempts=3, max_attempts=3, error="timed out")
    failed = Intervention.objects.create(
        org=world.org, kind=Intervention.Kind.JOB_EXHAUSTED, subject=f"job:{job.pk}", title="tls on 127.0.0.9 failed",
        session=session, job=job, node=job.node, occurrences=3,
        context={"error": "timed out after 3 attempts", "attempts": 3, "max_attempts": 3, "task_id": "9f1c2ab7",
                 "correlation_id": "schedule-acme-1a2b3c"})
    Intervention.objects.create(org=world.org, kind=Intervention.Kind.IMPORT_REJECTED, subject="import:abc",
                                title="nmap.xml rejected: not XML", context={"error": "line 1: not well-formed"})

    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, "acme-analyst")
    page.click("nav.orgnav >> text=Interventions")
    page.wait_for_url(f"{live_server.url}/o/acme/interventions/")
    assert page.inner_text("#nav-interventions-count").strip() == "2"
    shot(page, "interventions-1280")

    row = page.locator(f"#intervention-{failed.pk}")
    assert row.locator("form").count() == 0  # the row's forms come when the person opens its actions
    row.locator("summary:has-text('Actions')").click()
    row.locator("input[name=note]").fill("Opened the firewall for the scanner")
    row.locator("button:has-text('Resolve')").click()
    expect(page.locator("#nav-interventions-count")).to_have_text("1")
    row = page.locator(f"#intervention-{failed.pk}")
    assert "Resolved" in row.inner_text()
    assert page.url == f"{live_server.url}/o/acme/interventions/"  # in place: no navigation
    assert f"Intervention #{failed.pk} resolved" in page.inner_text("#messages")
    failed.refresh_from_db()
    assert failed.state == "resolved" and failed.note == "Opened the firewall for the scanner"
    shot(page, "interventions-resolved-1280")

    # Another action of the same row form: acknowledging keeps it counted as open work.
    rejected = Intervention.objects.get(kind=Intervention.Kind.IMPORT_REJECTED)
    page.locator(f"#intervention-{rejected.pk} summary:has-text('Actions')").click()
    page.locator(f"#intervention-{rejected.pk} button:has-text('Acknowledge')").click()
    expect(page.locator(f"#intervention-{rejected.pk} .status")).to_have_text("Acknowledged")
    expect(page.locator("#nav-interventions-count")).to_have_text("1")
    rejected.refresh_from_db()
    assert rejected.state == "acknowledged" and rejected.acknowledged_by == world.analyst

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    shot(page, "interventions-390")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto(f"{live_server.url}/o/acme/interventions/{failed.pk}/")
    shot(page, "intervention-detail-390")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
