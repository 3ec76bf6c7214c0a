"""The dashboard in a browser: real figures at 1280 px and 390 px, and running sessions that update then stop polling."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from interventions.models import Intervention
from nodes.models import NodeSnapshot
from scans.models import OrganizationScore, ScanSession
from tests.e2e.browser import log_in, no_horizontal_scroll, overflowing, shot
from tests.factories import NodeFactory, ScanSessionFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def populate(org):
    grades = ["A", "B", "C", "D", "F", "F", "D", "C"]
    for n, grade in enumerate(grades):
        node = NodeFactory(org=org, name=f"a-rather-long-node-name-{n}.production.example.internal")
        NodeSnapshot.objects.filter(node=node).update(score=95 - n * 11, grade=grade, critical=n % 3, high=n, medium=2 * n,
                                                      low=3, protocols=["http", "tls", "redis"], last_scan_status="succeeded")
    for score in (61, 64, 70, 68, 75):
        OrganizationScore.objects.create(org=org, score=score, grade="C")
    Intervention.objects.create(org=org, kind=Intervention.Kind.IMPORT_REJECTED, subject="import:abc",
                                title="Import of nightly-nuclei.jsonl rejected: not JSON Lines")
    Intervention.objects.create(org=org, kind=Intervention.Kind.NODE_UNREACHABLE, subject="node:x",
                                title="legacy-db answered on none of 1000 port(s)", node=org.nodes.first())
    ScanSessionFactory(org=org, profile=None, status=ScanSession.Status.SUCCEEDED, stage=ScanSession.Stage.DONE,
                       findings_new=12, findings_fixed=3, findings_reopened=1)


def test_the_dashboard_shows_real_figures_at_desktop_and_phone_widths(page, live_server, world):
    populate(world.org)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server)
    assert page.locator("h1").inner_text() == "Acme"
    assert page.locator("#dash-open-interventions").inner_text() == "2"
    assert page.locator("#open-interventions").get_by_text("nightly-nuclei.jsonl").is_visible()
    assert page.locator("#worst-nodes tbody tr").count() == 8
    assert page.locator("svg.chart-svg polyline").count() == 1
    shot(page, "dashboard-1280.png")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert no_horizontal_scroll(page), overflowing(page)
    shot(page, "dashboard-390.png")

    # A worst-node row opens that node; a severity tile opens the filtered findings.
    page.set_viewport_size({"width": 1280, "height": 900})
    href = page.locator("#worst-nodes tbody tr a").first.get_attribute("href")
    assert href.startswith("/o/acme/nodes/")
    assert page.locator("a.tile.sev-critical").get_attribute("href") == "/o/acme/findings/?severity=critical&status=open"


def test_a_running_session_updates_in_place_and_the_polling_stops_when_it_ends(page, live_server, world):
    session = ScanSessionFactory(org=world.org, profile=None, status=ScanSession.Status.RUNNING, stage=ScanSession.Stage.EXECUTION,
                                 jobs_total=10, jobs_succeeded=2)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server)
    execution = page.locator("#running-sessions .stage-bars li.current progress")
    assert execution.get_attribute("value") == "2"

    ScanSession.objects.filter(pk=session.pk).update(jobs_succeeded=7)
    expect(page.locator("#running-sessions .stage-bars li.current progress")).to_have_attribute("value", "7")
    shot(page, "dashboard-running-session.png")

    ScanSession.objects.filter(pk=session.pk).update(status=ScanSession.Status.SUCCEEDED, stage=ScanSession.Stage.DONE)
    page.get_by_text("The session finished").wait_for()
    # The idle fragment carries no trigger: nothing polls any more.
    assert page.locator("#running-sessions[hx-trigger]").count() == 0
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/running/" in r.url else None)
    # Two polling periods and more: a live trigger would have fired at least twice.
    page.wait_for_timeout(4500)
    assert requests == []
