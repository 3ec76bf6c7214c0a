"""axe-core over every console page: no serious or critical violation, at desktop and phone widths."""

from __future__ import annotations

import pytest

from interventions.models import Intervention
from tests.e2e.browser import log_in
from nodes.models import NodeSnapshot
from orgs.models import ApiToken
from orgs.services import api_token_create
from scans.findings.groups import finding_groups_refresh
from scans.models import SavedView
from tests.factories import FindingFactory, NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BLOCKING = {"serious", "critical"}


@pytest.fixture
def pages(world):
    """The console's pages, each with something on it (rows, a detail), by name."""
    node = NodeFactory(org=world.org, address="127.0.30.1", name="web", services=[{"port": 443, "service": "https"}])
    NodeSnapshot.objects.filter(node=node).update(score=70, grade="C", high=1)
    session = ScanSessionFactory(org=world.org, profile=None, status="partial", reason="1 of 2 scanner jobs failed")
    ScanJobFactory(session=session, node=node, scanner="tls", status="failed", error="TimeoutError")
    finding = FindingFactory(org=world.org, node=node, severity="medium", title="HSTS missing", port=443)
    FindingFactory(org=world.org, node=node, severity="high", title="TLS 1.0 accepted", port=443)
    intervention = Intervention.objects.create(org=world.org, kind=Intervention.Kind.NODE_UNREACHABLE,
                                               subject="node:x", title="web unreachable", node=node)
    api_token_create(org=world.org, name="ci", access=ApiToken.Access.READ, by=world.owner)
    finding_groups_refresh(org=world.org)
    SavedView.objects.create(org=world.org, name="Highs", query="severity=high&status=open", owner=world.owner,
                             shared=True)
    base = f"/o/{world.org.slug}"
    return {
        "dashboard": f"{base}/", "nodes": f"{base}/nodes/", "node": f"{base}/nodes/{node.pk}/",
        "node-add": f"{base}/nodes/add/", "node-bulk": f"{base}/nodes/bulk/", "findings": f"{base}/findings/",
        "finding": f"{base}/findings/{finding.pk}/", "sessions": f"{base}/sessions/",
        "session": f"{base}/sessions/{session.pk}/", "session-new": f"{base}/sessions/new/",
        "interventions": f"{base}/interventions/", "intervention": f"{base}/interventions/{intervention.pk}/",
        "reports": f"{base}/reports/", "members": f"{base}/members/", "settings": f"{base}/settings/",
        "tokens": f"{base}/settings/tokens/", "audit": f"{base}/audit/",
        "findings-groups": f"{base}/findings/groups/", "saved-views": f"{base}/findings/views/",
    }


def violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
            for v in results.response["violations"] if v["impact"] in BLOCKING]


@pytest.mark.parametrize("width", [1280, 390])
def test_no_console_page_has_a_serious_or_critical_accessibility_violation(page, live_server, world, pages, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    found = {"login": violations(page)}
    log_in(page, live_server)
    for name, path in pages.items():
        page.goto(f"{live_server.url}{path}")
        found[name] = violations(page)

    failing = {name: v for name, v in found.items() if v}
    assert not failing, "\n".join(f"{name}: {line}" for name, lines in failing.items() for line in lines)


def test_no_table_has_an_empty_header_cell(page, live_server, world, pages):
    log_in(page, live_server)
    empty = {}
    for name, path in pages.items():
        page.goto(f"{live_server.url}{path}")
        cells = page.evaluate("[...document.querySelectorAll('th')].filter(th => !th.textContent.trim() "
                              "&& !th.querySelector('input')).length")
        if cells:
            empty[name] = cells

    assert empty == {}


def test_the_first_tab_stop_skips_to_the_content(page, live_server, world):
    log_in(page, live_server)
    page.keyboard.press("Tab")
    focused = page.evaluate("[document.activeElement.textContent.trim(), document.activeElement.getAttribute('href')]")

    assert focused == ["Skip to content", "#content"]
    assert page.locator("main#content").count() == 1
