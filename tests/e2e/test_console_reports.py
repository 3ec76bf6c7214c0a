"""The reports page in a browser: request a report, watch its row turn ready, download it; 1280 px and 390 px."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from nodes.models import NodeSnapshot
from reports.models import Report
from reports.services import report_generate
from scans.models import OrganizationScore
from tests.e2e.browser import log_in, no_horizontal_scroll, shot
from tests.factories import FindingFactory, NodeFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def populate(org):
    for n, (score, grade) in enumerate([(35, "F"), (72, "C")]):
        node = NodeFactory(org=org, name=f"a-rather-long-node-name-{n}.production.example.internal")
        NodeSnapshot.objects.filter(node=node).update(score=score, grade=grade)
        FindingFactory(node=node, title="Redis answers without a password", severity="high",
                       cvss_score=Decimal("8.6"), port=6379, remediation="Require a password.")
    for score in (61, 64, 58):
        OrganizationScore.objects.create(org=org, score=score, grade="D")
    failed = Report.objects.create(org=org, kind="node", node=org.nodes.first(), format="pdf", status="failed",
                                   error="OSError: [Errno 28] No space left on device: '/var/lib/watchpost/media'")
    return failed


def test_an_owner_requests_a_report_sees_it_turn_ready_and_downloads_it(world, live_server, page):
    populate(world.org)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/o/acme/reports/")
    expect(page.locator("h1")).to_have_text("Reports of Acme")
    expect(page.locator("#reports")).to_contain_text("No space left on device")

    page.select_option("#id_kind", "organization")
    page.select_option("#id_format", "csv")
    page.click("#request button[type=submit]")
    page.wait_for_url(f"{live_server.url}/o/acme/reports/")
    report = Report.objects.get(format="csv")
    row = page.locator(f"#report-{report.pk}")
    expect(row).to_contain_text("Pending")

    report = report_generate(report_id=report.pk)  # what the reports queue's worker does
    # The row polls its status every 2 s and stops once the report is ready.
    expect(row.get_by_role("link", name="Download")).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("Ready")
    shot(page, "reports-1280.png")
    assert no_horizontal_scroll(page)

    with page.expect_download() as download_info:
        row.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == report.file_name
    assert Path(download.path()).read_bytes().startswith(b"finding_id,node_id,node_address")


def test_the_reports_page_fits_a_phone(world, live_server, page):
    populate(world.org)
    report = report_generate(report_id=Report.objects.create(org=world.org, kind="organization", format="pdf").pk)
    assert report.status == "ready", report.error
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/o/acme/reports/")
    expect(page.locator(f"#report-{report.pk}")).to_contain_text("Ready")
    shot(page, "reports-390.png")
    assert no_horizontal_scroll(page)


def test_a_viewer_sees_reports_but_no_request_form(world, live_server, page):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, username="acme-viewer")
    page.goto(f"{live_server.url}/o/acme/reports/")
    expect(page.locator(".empty")).to_contain_text("An analyst or an administrator can request one.")
    assert page.locator("#request").count() == 0 and page.locator("#schedule").count() == 0


def test_the_request_form_shows_the_node_or_session_field_only_for_its_kind_and_nothing_is_scheduled_unticked(
        world, live_server, page):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/o/acme/reports/")
    node, session = page.locator("#id_node"), page.locator("#id_session")

    assert not node.is_visible() and not session.is_visible()  # an organization report names neither
    page.select_option("#id_kind", "node")
    assert node.is_visible() and not session.is_visible()
    page.select_option("#id_kind", "session")
    assert session.is_visible() and not node.is_visible()
    expect(page.locator("#schedule")).to_contain_text("No report is scheduled")
    assert not page.locator("#schedule input[name=enabled]").is_checked()
