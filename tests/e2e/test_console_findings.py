"""An analyst opens a finding and accepts its risk, then triages findings in bulk from the list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orgs.models import AuditEvent
from scans.cve.catalog import CVE_FIXTURE, cve_catalog_import
from scans.models import CveRecord, Finding
from tests.e2e.browser import log_in, no_horizontal_scroll, shot
from tests.factories import FindingFactory, NodeFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def both_widths(page, name: str) -> None:
    """A screenshot at 1280 px, then at 390 px with no horizontal page scroll; back to 1280 px."""
    page.set_viewport_size({"width": 1280, "height": 900})
    shot(page, f"{name}-1280.png")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, f"{name}-390.png")
    assert no_horizontal_scroll(page), name
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def findings(world):
    cve_catalog_import(paths=[CVE_FIXTURE])
    record = CveRecord.objects.exclude(references=[]).exclude(cvss_score=None).order_by("-cvss_score").first()
    web, db = NodeFactory(org=world.org, name="web-1"), NodeFactory(org=world.org, name="db-1")
    cve = FindingFactory(node=web, source="cve", severity="critical", cvss_score=record.cvss_score,
                         cvss_vector=record.cvss_vector, cve_ids=[record.cve_id], port=22,
                         title=f"{record.cve_id} in the SSH daemon", remediation="Upgrade OpenSSH.",
                         evidence={"banner": "SSH-2.0-OpenSSH_8.9p1", "product": "openssh", "version": "8.9p1",
                                   # A tool's raw answer kept as JSON text, as the Docker probe keeps it.
                                   "received": '[{"Id": "4f1c", "Names": ["/web"], "Image": "nginx:1.25"}]'},
                         match_confidence=0.9, match_reason="openssh 8.9p1 within [8.5p1, 9.8p1)")
    lows = [FindingFactory(node=node, source="http", severity="low", port=80, title=f"Header missing {n}")
            for n, node in enumerate([web, db, web, db, web], 1)]
    return cve, lows


def test_an_analyst_opens_a_finding_and_accepts_its_risk(page, live_server, world, findings):
    cve, _ = findings
    log_in(page, live_server, "acme-analyst")
    # The navigation's findings menu: its views, and the saved ones fetched when it opens.
    page.click("nav.orgnav details.navmenu > summary")
    page.wait_for_selector("nav.orgnav .navmenu-saved >> text=Manage saved views")
    page.click("nav.orgnav >> text=Open findings")
    page.wait_for_url(f"{live_server.url}/o/acme/findings/")
    assert page.locator(".severity-counts .sev-critical .figure").inner_text() == "1"
    both_widths(page, "findings-list")

    page.click(f"text={cve.title}")
    page.wait_for_url(f"{live_server.url}/o/acme/findings/{cve.pk}/")
    assert cve.cve_ids[0] in page.locator(".cves").inner_text()
    assert "openssh 8.9p1 within the affected versions (from 8.5p1 up to but not including 9.8p1)" in page.content()
    # The evidence reads as labelled values, the JSON text decoded (no escaped quotes).
    evidence = page.locator("div.evidence")
    assert evidence.locator("dt", has_text="Image").is_visible() and '\\"' not in evidence.inner_text()
    # Open finding: no "Reopen"; the expiry shows only once "Accept risk" is opened.
    triage = page.locator("#triage")
    assert triage.locator("button[value=open]").count() == 0
    assert not page.locator("#t-until").is_visible()
    page.fill("#t-reason", "Reachable from the VPN only")
    triage.locator("summary:has-text('Accept risk')").click()
    page.fill("#t-until", (timezone.localdate() + timedelta(days=30)).isoformat())
    both_widths(page, "finding-detail-accepting")
    page.click("text=Accept the risk until this day")
    page.wait_for_selector("#finding-status:has-text('Risk accepted')")
    assert "accepted as a risk" in page.locator("#messages").inner_text()
    assert "Reachable from the VPN only" in page.locator("#history").inner_text()
    cve.refresh_from_db()
    assert (cve.status, cve.triaged_by) == ("risk_accepted", world.analyst)
    both_widths(page, "finding-detail")


def test_an_analyst_triages_selected_rows_then_everything_matching_a_filter(page, live_server, world, findings):
    _, lows = findings
    log_in(page, live_server, "acme-analyst")
    page.goto(f"{live_server.url}/o/acme/findings/")

    # The keyboard: j moves to the first row, x selects it; the second row by its checkbox.
    page.keyboard.press("j")
    page.keyboard.press("x")
    rows = page.locator("table.findings tbody tr")
    assert rows.nth(0).locator("input[name=finding]").is_checked()
    rows.nth(1).locator("input[name=finding]").check()
    page.fill("#bulk-reason", "Lab decoys")
    # Enter in the reason submits nothing (the form's default button is disabled): no silent triage.
    # The submit event fires synchronously on Enter, so the count is read without waiting.
    page.evaluate("window.bulkSubmits = 0; document.getElementById('bulk-form')"
                  ".addEventListener('submit', () => { window.bulkSubmits += 1; })")
    page.press("#bulk-reason", "Enter")
    assert page.evaluate("window.bulkSubmits") == 0
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#bulk-form button[value=false_positive]")
    page.wait_for_selector("#messages:has-text('2 findings marked a false positive')")
    assert Finding.objects.filter(status="false_positive", triage_reason="Lab decoys").count() == 2

    # The filter lives in the URL (htmx pushes it); "all matching" posts it and confirms the count first.
    page.select_option("#f-severity", "low")
    page.wait_for_url("**/findings/?*severity=low*")
    # The list shows open findings unless told otherwise: the status filter already says so.
    assert page.locator("#f-status").input_value() == "open" and "status=open" in page.url
    open_lows = Finding.objects.filter(severity="low", status="open").count()
    assert page.locator("table.findings tbody tr").count() == open_lows
    page.fill("#bulk-reason", "Headers are set by the CDN")
    page.check("#bulk-matching")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#bulk-form button[value=false_positive]")
    page.wait_for_selector("#bulk-count")
    assert f"{open_lows} findings match" in page.locator("#bulk-count").inner_text()
    both_widths(page, "findings-bulk-confirm")
    page.click(f"text=Triage {open_lows} findings")
    page.wait_for_selector(f"#messages:has-text('{open_lows} findings marked a false positive')")
    assert "severity=low" in page.url
    assert not Finding.objects.filter(severity="low", status="open").exists()
    # The critical CVE finding (first row) was among the two selected; nothing else changed.
    assert Finding.objects.filter(status="false_positive").count() == 2 + open_lows == len(lows) + 1
    assert AuditEvent.objects.filter(verb="finding.triaged").count() == 2 + open_lows
    both_widths(page, "findings-after-bulk")


def test_an_analyst_triages_one_row_in_place_from_the_list(page, live_server, world, findings):
    _, lows = findings
    log_in(page, live_server, "acme-analyst")
    page.goto(f"{live_server.url}/o/acme/findings/?severity=low")
    row = page.locator(f"#finding-{lows[0].pk}")
    row.locator("text=Triage").click()
    row.locator("input[name=reason]").fill("Scanner noise")
    assert row.locator("button[value=open]").count() == 0  # an open finding offers no "Reopen"
    row.locator("button[value=false_positive]").click()
    page.wait_for_selector(f"#finding-{lows[0].pk} .status-false_positive")
    assert page.url.endswith("/o/acme/findings/?severity=low")
    lows[0].refresh_from_db()
    assert (lows[0].status, lows[0].triage_reason) == ("false_positive", "Scanner noise")

    # A second tab triaged the next row meanwhile: saving from this stale row shows its current state.
    row = page.locator(f"#finding-{lows[1].pk}")
    row.locator("text=Triage").click()
    row.locator("input[name=reason]").wait_for()  # the form (and the version it carries) has arrived
    Finding.objects.filter(pk=lows[1].pk).update(status="risk_accepted", triage_reason="elsewhere", version=7)
    row.locator("input[name=reason]").fill("Too late")
    row.locator("button[value=false_positive]").click()
    page.wait_for_selector(f"#finding-{lows[1].pk} .status-risk_accepted")
    assert "Changed meanwhile" in page.locator(f"#finding-{lows[1].pk}").inner_text()
    lows[1].refresh_from_db()
    assert lows[1].triage_reason == "elsewhere"
    both_widths(page, "findings-row-triage")
