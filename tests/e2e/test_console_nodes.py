"""In a browser: add nodes one by one (with the scope verdict inline) and from a pasted list, then find them."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from nodes.models import Node, NodeScore, NodeSnapshot
from tests.e2e.browser import log_in, no_horizontal_scroll, shot
from tests.factories import FindingFactory, NodeFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # the factories' password (conftest.py)


def test_an_analyst_adds_nodes_by_form_and_by_pasted_list_and_finds_them(page, live_server, world):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, "acme-analyst")
    page.click("nav.orgnav >> text=Nodes")
    page.wait_for_url(f"{live_server.url}/o/acme/nodes/")
    assert "No nodes yet" in page.inner_text("#node-table")

    # One node through the form: the scope guard answers as the field is left.
    page.click("text=Add a node")
    page.fill("#id_address", "10.0.0.1")
    page.press("#id_address", "Tab")
    page.wait_for_selector("#address-check .error")
    assert "refused 10.0.0.1" in page.inner_text("#address-check")
    page.fill("#id_address", "127.0.0.5")
    page.press("#id_address", "Tab")
    page.wait_for_selector("#address-check .check-ok")
    page.fill("#id_name", "web-1")
    page.fill("#id_tags", "prod, eu")
    shot(page, "nodes-add-1280")
    page.click("button:has-text('Add node')")
    page.wait_for_selector("h1 >> text=127.0.0.5")
    assert "127.0.0.5 added" in page.inner_text("#messages")

    # Many through a pasted list: one added, one duplicate, one refused with the reason.
    page.goto(f"{live_server.url}/o/acme/nodes/bulk/")
    page.fill("#id_text", "127.0.0.6 db-1\n127.0.0.5\n10.0.0.1\n127.0.0.7\n")
    page.click("button:has-text('Add nodes')")
    page.wait_for_selector("#bulk-report")
    report = page.inner_text("#bulk-report")
    assert "2 added" in report and "1 skipped" in report and "1 refused" in report
    assert "outside the deployment's allowed networks" in report
    shot(page, "nodes-bulk-report-1280")
    assert set(Node.objects.filter(org=world.org).values_list("address", flat=True)) == {
        "127.0.0.5", "127.0.0.6", "127.0.0.7"}

    # Search through htmx: the table changes in place and the URL keeps the filter.
    page.goto(f"{live_server.url}/o/acme/nodes/")
    assert page.locator("#node-table tbody tr").count() == 3
    page.fill("#id_q", "db-1")
    expect(page.locator("#node-table tbody tr")).to_have_count(1)
    page.wait_for_url("**/nodes/?*q=db-1*")
    page.click("#node-table th >> text=Name")
    page.wait_for_url("**sort=name**")
    assert "q=db-1" in page.url
    page.fill("#id_q", "")
    page.select_option("#id_enabled", "yes")
    expect(page.locator("#node-table tbody tr")).to_have_count(3)
    shot(page, "nodes-list-1280")
    page.go_back()
    expect(page.locator("#node-table tbody tr")).to_have_count(1)

    # "Scan selected" hands the chosen nodes to the session form.
    page.goto(f"{live_server.url}/o/acme/nodes/?sort=address")
    first, second = Node.objects.filter(org=world.org).order_by("address")[:2]
    page.check(f"input[name=node][value='{first.pk}']")
    page.check(f"input[name=node][value='{second.pk}']")
    page.click("button:has-text('Scan selected')")
    page.wait_for_url(f"**/o/acme/sessions/new/?node={first.pk}&node={second.pk}")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/o/acme/nodes/")
    shot(page, "nodes-list-390")
    assert no_horizontal_scroll(page)
    page.goto(f"{live_server.url}/o/acme/nodes/bulk/")
    assert no_horizontal_scroll(page)
    page.goto(f"{live_server.url}/o/acme/nodes/add/")
    shot(page, "nodes-add-390")
    assert no_horizontal_scroll(page)


def test_the_node_page_shows_what_is_known_at_desktop_and_phone_widths(page, live_server, world):
    node = NodeFactory(
        org=world.org, address="127.0.0.5", name="rpc-1", state="up", protocols=["ssh", "ethereum-jsonrpc"],
        tags=["prod", "validators"], discovery_confidence=0.97,
        services=[{"host": "127.0.0.5", "port": 22, "protocol": "tcp", "service": "ssh", "product": "OpenSSH",
                   "version": "8.9p1", "cpe": "cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*"},
                  {"host": "127.0.0.5", "port": 8545, "protocol": "tcp", "service": "ethereum-jsonrpc",
                   "product": "Geth", "version": "1.13.4"}],
        discovery_evidence={"protocols": [
            {"protocol": "ssh", "port": 22, "confidence": 0.95, "tls": False, "version": "8.9p1",
             "evidence": [{"signature": "usual port 22", "weight": 0.2},
                          {"probe": "banner", "signature": "text ~ ^SSH-", "matched": "SSH-2.0-OpenSSH_8.9p1",
                           "weight": 0.9}]},
            {"protocol": "ethereum-jsonrpc", "port": 8545, "confidence": 0.97, "tls": False, "version": "",
             "evidence": [{"probe": "eth-chainid", "signature": "json result ~ ^0x", "matched": "result = \"0x1\"",
                           "weight": 0.9}]}]},
    )
    NodeSnapshot.objects.filter(node=node).update(score=62, grade="D", critical=1, high=2, medium=3)
    now = timezone.now()
    for days_ago, score in ((21, 90), (14, 81), (7, 70), (0, 62)):
        NodeScore.objects.create(node=node, score=score, grade="B", created_at=now - timedelta(days=days_ago))
    FindingFactory(node=node, title="Unauthenticated JSON-RPC admin methods", severity="critical")
    FindingFactory(node=node, title="OpenSSH 8.9p1: CVE-2023-38408", severity="high", cve_ids=["CVE-2023-38408"])
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, "acme-viewer")
    page.goto(f"{live_server.url}/o/acme/nodes/{node.pk}/")
    assert "OpenSSH" in page.inner_text("#services")
    assert "SSH-2.0-OpenSSH_8.9p1" in page.inner_text("#protocols")
    assert "Unauthenticated JSON-RPC" in page.inner_text("#findings")
    assert page.locator("svg.chart-svg").count() == 1
    shot(page, "node-detail-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    shot(page, "node-detail-390")
    assert no_horizontal_scroll(page)
