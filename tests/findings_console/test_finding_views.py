"""Console pages for findings: the filtered list, the detail, triage one at a time and in bulk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEvent
from scans.cve.catalog import CVE_FIXTURE, cve_catalog_import
from scans.models import CveRecord, Finding, FindingEvent
from tests.factories import FindingFactory, NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"scans:{name}", args=["acme", *args])


@pytest.fixture
def node(world):
    return NodeFactory(org=world.org, name="web-1")


@pytest.fixture
def finding(node):
    return FindingFactory(node=node, severity="high", title="Exposed Redis", evidence={"banner": "redis 7"})


def tomorrow_plus(days=30):
    return (timezone.localdate() + timedelta(days=days)).isoformat()


# -- the checklist -------------------------------------------------------------------


def test_every_findings_page_sends_an_anonymous_visitor_to_login(world, client, finding):
    for page in (url("finding_list"), url("finding_detail", finding.pk), url("finding_triage", finding.pk)):
        response = client.get(page)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    for page in (url("finding_triage", finding.pk), url("finding_bulk_triage")):
        response = client.post(page)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_every_findings_page_is_404_for_another_organizations_member(world, login, finding):
    client = login(world.outsider)
    assert client.get(url("finding_list")).status_code == 404
    assert client.get(url("finding_detail", finding.pk)).status_code == 404
    assert client.post(url("finding_triage", finding.pk), {"status": "false_positive", "reason": "x"}).status_code == 404
    assert client.post(url("finding_bulk_triage"), {"status": "false_positive", "reason": "x",
                                                   "finding": [finding.pk]}).status_code == 404


def test_a_finding_of_another_organization_is_404_under_ones_own_slug(world, login):
    foreign = FindingFactory(node=NodeFactory(org=world.other_org))
    client = login(world.owner)
    assert client.get(url("finding_detail", foreign.pk)).status_code == 404
    assert client.post(url("finding_triage", foreign.pk), {"status": "false_positive", "reason": "x"}).status_code == 404


def test_bulk_triage_never_touches_another_organizations_findings(world, login):
    foreign = FindingFactory(node=NodeFactory(org=world.other_org))
    login(world.owner).post(url("finding_bulk_triage"), {"status": "false_positive", "reason": "x",
                                                         "finding": [foreign.pk]})
    foreign.refresh_from_db()
    assert foreign.status == "open"


def test_wrong_methods_are_refused(world, login, finding):
    client = login(world.owner)
    assert client.post(url("finding_list")).status_code == 405
    assert client.post(url("finding_detail", finding.pk)).status_code == 405
    assert client.put(url("finding_triage", finding.pk)).status_code == 405
    assert client.get(url("finding_bulk_triage")).status_code == 405


def test_a_viewer_reads_findings_but_cannot_triage(world, login, finding):
    client = login(world.viewer)
    assert client.get(url("finding_list")).status_code == 200
    detail = client.get(url("finding_detail", finding.pk))
    assert detail.status_code == 200 and b"read-only" in detail.content
    assert client.post(url("finding_triage", finding.pk), {"status": "false_positive", "reason": "x"}).status_code == 403
    assert client.post(url("finding_bulk_triage"), {"status": "false_positive", "reason": "x",
                                                   "finding": [finding.pk]}).status_code == 403
    assert b'data-select-all' not in client.get(url("finding_list")).content


def test_triage_needs_the_csrf_token(world, finding):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.analyst)
    assert client.post(url("finding_triage", finding.pk), {"status": "false_positive", "reason": "x"}).status_code == 403
    assert client.post(url("finding_bulk_triage"), {"status": "false_positive", "reason": "x",
                                                   "finding": [finding.pk]}).status_code == 403


# -- list ------------------------------------------------------------------------------


def test_the_list_shows_counts_per_severity_for_the_current_filter(world, login, node):
    for severity, n in (("critical", 2), ("high", 3), ("low", 1)):
        for _ in range(n):
            FindingFactory(node=node, severity=severity, source="nuclei" if severity == "high" else "tls")
    response = login(world.viewer).get(url("finding_list"), {"source": "nuclei"})
    assert response.context["counts"] == {"critical": 0, "high": 3, "medium": 0, "low": 0, "info": 0}
    assert response.context["total"] == 3 and len(response.context["rows"]) == 3


def test_the_list_carries_the_keyboard_and_selection_hooks(world, login, finding):
    content = login(world.analyst).get(url("finding_list")).content.decode()
    assert "data-keyboard-list" in content and "data-row" in content and "data-search" in content
    assert 'data-select-all="finding"' in content and 'hx-push-url="true"' in content


def test_an_htmx_request_gets_the_results_fragment_only(world, login, finding):
    response = login(world.viewer).get(url("finding_list"), {"severity": "high"}, HTTP_HX_REQUEST="true")
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="finding-results">') and "<html" not in content
    assert "Exposed Redis" in content


def test_an_htmx_update_refreshes_the_forms_link_driven_state_out_of_band(world, login, finding):
    content = login(world.viewer).get(url("finding_list"), {"severity": "high", "sort": "cvss"},
                                      HTTP_HX_REQUEST="true").content.decode()
    state = content[content.index('<div id="filter-state"'):]
    assert 'hx-swap-oob="true"' in state.split(">")[0]
    assert '<input type="hidden" name="sort" value="cvss">' in state
    assert '<option value="high" selected>' in state


def test_sorting_and_paging_keep_the_filter_in_the_links(world, login, node):
    for _ in range(60):
        FindingFactory(node=node, severity="low")
    response = login(world.viewer).get(url("finding_list"), {"severity": "low", "sort": "-last_seen"})
    content = response.content.decode()
    assert "?severity=low&amp;sort=-last_seen&amp;page=2" in content
    assert response.context["pages"] == 2 and len(response.context["rows"]) == 50


def test_the_empty_list_says_what_to_do(world, login):
    assert b"Start a session" in login(world.viewer).get(url("finding_list")).content
    assert b"Clear the filter" in login(world.viewer).get(url("finding_list"), {"severity": "high"}).content


def test_a_sessions_new_findings_are_one_link_away(world, login, node):
    session = ScanSessionFactory(org=world.org)
    new = FindingFactory(node=node, title="Brand new")
    FindingFactory(node=node, title="Old news")
    FindingEvent.objects.create(finding=new, session=session, kind="new", to_status="open")
    content = login(world.viewer).get(url("finding_list"), {"session": session.pk, "change": "new"}).content.decode()
    assert "Brand new" in content and "Old news" not in content


@pytest.mark.parametrize("rows", [10, 1000])
@pytest.mark.parametrize("query", [{}, {"severity": "high", "status": "open", "q": "redis", "sort": "-cvss"}])
def test_the_list_reads_the_same_number_of_queries_at_10_and_1000_findings(world, login, node, rows, query,
                                                                           django_assert_num_queries):
    Finding.objects.bulk_create([
        Finding(org=world.org, node=node, source="tls", rule_id=f"r{i}", title=f"Redis {i}", severity="high",
                fingerprint=f"{i:064x}", cvss_score=7.5) for i in range(rows)])
    client = login(world.analyst)
    # session, user, membership, severity counts, one page of rows, nav organizations, open interventions,
    # the members the bulk bar assigns to
    with django_assert_num_queries(8):
        assert client.get(url("finding_list"), query).status_code == 200


# -- detail ----------------------------------------------------------------------------


def test_the_detail_shows_evidence_cve_data_remediation_and_history(world, login, node):
    cve_catalog_import(paths=[CVE_FIXTURE])
    record = CveRecord.objects.exclude(references=[]).exclude(cvss_score=None).first()
    finding = FindingFactory(node=node, cve_ids=[record.cve_id, "CVE-1999-0001"], remediation="Upgrade it.",
                             evidence={"banner": "OpenSSH_8.9"}, match_confidence=0.9,
                             match_reason="openssh 8.9 within range")
    session = ScanSessionFactory(org=world.org)
    FindingEvent.objects.create(finding=finding, session=session, kind="new", to_status="open")
    content = login(world.viewer).get(url("finding_detail", finding.pk)).content.decode()
    assert record.cve_id in content and str(record.cvss_score) in content and record.references[0] in content
    assert "Not in the local CVE catalog" in content
    assert "Upgrade it." in content and "&quot;banner&quot;: &quot;OpenSSH_8.9&quot;" in content
    assert "90% confidence" in content and "openssh 8.9 within range" in content
    assert f"#{session.pk}" in content and "New" in content


# -- triage, one at a time -------------------------------------------------------------


def test_an_analyst_accepts_a_risk_with_a_reason_and_an_expiry(world, login, finding):
    response = login(world.analyst).post(url("finding_triage", finding.pk), {
        "status": "risk_accepted", "reason": "behind the VPN", "until": tomorrow_plus(), "version": finding.version})
    assert response.status_code == 302 and response["Location"] == url("finding_detail", finding.pk)
    finding.refresh_from_db()
    assert (finding.status, finding.triage_reason, finding.triaged_by) == ("risk_accepted", "behind the VPN",
                                                                           world.analyst)
    assert finding.risk_accepted_until.date().isoformat() == tomorrow_plus()
    assert AuditEvent.objects.filter(verb="finding.triaged", target_id=str(finding.pk)).exists()
    assert FindingEvent.objects.filter(finding=finding, kind="triaged").exists()


def test_the_triage_form_explains_what_is_missing(world, login, finding):
    client = login(world.analyst)
    response = client.post(url("finding_triage", finding.pk), {"status": "risk_accepted", "version": 1})
    assert response.status_code == 400 and b"Say why" in response.content and b"needs an expiry" in response.content
    response = client.post(url("finding_triage", finding.pk), {"status": "open", "version": 1})
    assert response.status_code == 400 and b"Only a triaged finding" in response.content


def test_a_triage_from_a_stale_page_shows_the_current_state_instead(world, login, finding):
    Finding.objects.filter(pk=finding.pk).update(status="false_positive", triage_reason="someone else", version=2)
    response = login(world.analyst).post(url("finding_triage", finding.pk), {
        "status": "risk_accepted", "reason": "mine", "until": tomorrow_plus(), "version": 1})
    assert response.status_code == 409
    assert b"Someone changed this finding" in response.content and b"someone else" in response.content
    assert b'name="version" value="2"' in response.content
    finding.refresh_from_db()
    assert finding.triage_reason == "someone else"


def test_a_row_triaged_from_the_list_comes_back_as_a_row(world, login, finding):
    response = login(world.analyst).post(url("finding_triage", finding.pk), {
        "status": "false_positive", "reason": "decoy", "version": finding.version, "from": "list"},
        HTTP_HX_REQUEST="true")
    content = response.content.decode()
    assert response.status_code == 200 and content.startswith("<tr") and "False positive" in content
    assert f'hx-get="/o/acme/findings/{finding.pk}/triage/"' in content


def test_a_list_row_shows_the_findings_fields_with_their_text_escaped(world, login, node):
    finding = FindingFactory(node=node, severity="critical", title="<b>Bold</b> & more", source="nuclei",
                             rule_id="rule-1", cve_ids=["CVE-2024-1", "CVE-2024-2"], port=6379, cvss_score="9.8",
                             status="risk_accepted", risk_accepted_until=timezone.now() + timedelta(days=10))
    content = login(world.analyst).get(url("finding_list"), {"status": "all"}).content.decode()
    row = content.split(f'<tr data-row id="finding-{finding.pk}">')[1].split("</tr>")[0]
    assert f'value="{finding.pk}" form="bulk-form"' in row and '<span class="sev sev-critical">Critical</span>' in row
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; more</a>" in row and "nuclei · rule-1 · CVE-2024-1 · CVE-2024-2" in row
    assert f'href="/o/acme/findings/?node={node.pk}" title="This node\'s findings">web-1</a>' in row
    assert '<td class="col-port">6379</td>' in row and '<td class="num col-cvss">9.8</td>' in row
    assert "Risk accepted</span> <small class=\"muted\">until " in row and row.count("<time ") == 2
    assert f'hx-get="/o/acme/findings/{finding.pk}/triage/"' in row


def test_a_rows_triage_form_is_fetched_with_the_version_it_was_read_at(world, login, finding):
    Finding.objects.filter(pk=finding.pk).update(version=3)
    response = login(world.analyst).get(url("finding_triage", finding.pk), HTTP_HX_REQUEST="true")
    content = response.content.decode()
    assert response.status_code == 200 and "<html" not in content
    assert 'name="version" value="3"' in content and 'hx-target="closest tr"' in content


def test_a_viewer_cannot_fetch_a_rows_triage_form_nor_an_outsider(world, login, finding):
    assert login(world.viewer).get(url("finding_triage", finding.pk)).status_code == 403
    assert login(world.outsider).get(url("finding_triage", finding.pk)).status_code == 404


def test_a_stale_row_in_the_list_shows_its_current_state(world, login, finding):
    Finding.objects.filter(pk=finding.pk).update(status="false_positive", version=5)
    response = login(world.analyst).post(url("finding_triage", finding.pk), {
        "status": "false_positive", "reason": "decoy", "version": 1, "from": "list"}, HTTP_HX_REQUEST="true")
    # htmx swaps only successful responses: the row with its conflict comes back as a 200.
    assert response.status_code == 200 and b"Changed meanwhile" in response.content
    assert b'name="version" value="5"' in response.content


# -- triage in bulk --------------------------------------------------------------------


def test_selected_rows_are_triaged_together(world, login, node):
    chosen = [FindingFactory(node=node) for _ in range(3)]
    other = FindingFactory(node=node)
    response = login(world.analyst).post(url("finding_bulk_triage"), {
        "status": "false_positive", "reason": "lab", "finding": [f.pk for f in chosen], "filter": "severity=medium"})
    assert response.status_code == 302 and response["Location"] == f"{url('finding_list')}?severity=medium"
    assert Finding.objects.filter(status="false_positive").count() == 3
    other.refresh_from_db()
    assert other.status == "open"
    assert AuditEvent.objects.filter(verb="finding.triaged").count() == 3


def test_all_matching_a_filter_asks_first_with_the_count_then_triages(world, login, node):
    for _ in range(4):
        FindingFactory(node=node, severity="low")
    FindingFactory(node=node, severity="critical")
    client = login(world.analyst)
    data = {"status": "risk_accepted", "reason": "accepted by CISO", "until": tomorrow_plus(), "matching": "on",
            "filter": "severity=low"}
    confirm = client.post(url("finding_bulk_triage"), data)
    assert confirm.status_code == 200 and b"<strong>4</strong> findings match" in confirm.content
    assert not Finding.objects.filter(status="risk_accepted").exists()
    done = client.post(url("finding_bulk_triage"), {**data, "confirmed": "on"}, follow=True)
    assert Finding.objects.filter(status="risk_accepted").count() == 4
    assert Finding.objects.get(severity="critical").status == "open"
    assert b"4 findings accepted as a risk" in done.content


def test_bulk_triage_without_a_selection_says_what_to_do(world, login, finding):
    response = login(world.analyst).post(url("finding_bulk_triage"), {"status": "false_positive", "reason": "x"},
                                         follow=True)
    assert b"Select findings" in response.content


def test_the_detail_stays_within_twelve_queries(world, login, node, django_assert_max_num_queries):
    finding = FindingFactory(node=node, cve_ids=["CVE-2021-44228", "CVE-2022-0543"], status="false_positive",
                             triaged_by=world.analyst, triaged_at=timezone.now(), triage_reason="decoy")
    for kind in ("new", "fixed", "reopened", "triaged"):
        FindingEvent.objects.create(finding=finding, kind=kind, session=ScanSessionFactory(org=world.org),
                                    by=world.analyst)
    client = login(world.viewer)
    with django_assert_max_num_queries(12):
        assert client.get(url("finding_detail", finding.pk)).status_code == 200


# -- explicit triage actions (QA walk, issue 8) -----------------------------------------


def _actions(content: str) -> list[str]:
    """The status values the page's triage buttons send, in order."""
    return [part.split('"', 1)[0] for part in content.split('name="status" value="')[1:]]


def test_an_open_findings_page_offers_false_positive_and_accept_risk_but_not_reopen(world, login, finding):
    content = login(world.analyst).get(url("finding_detail", finding.pk)).content.decode()
    triage = content.split('id="triage"', 1)[1].split("</section>", 1)[0]
    assert _actions(triage) == ["false_positive", "risk_accepted"]
    # Nothing is preselected: no select with a default, the person presses the action's button.
    assert "<select" not in triage and "selected" not in triage and "checked" not in triage
    # The expiry belongs to accepting a risk only: it sits inside that action's <details>.
    before, accept = triage.split('<details class="accept-risk"', 1)
    assert 'name="until"' not in before and 'name="until"' in accept


def test_a_triaged_findings_page_offers_reopen_and_not_the_status_it_already_has(world, login, finding):
    Finding.objects.filter(pk=finding.pk).update(status="false_positive", triage_reason="noise")
    content = login(world.analyst).get(url("finding_detail", finding.pk)).content.decode()
    assert _actions(content.split('id="triage"', 1)[1]) == ["risk_accepted", "open"]


def test_a_triage_without_an_action_changes_nothing_and_asks_for_one(world, login, finding):
    response = login(world.analyst).post(url("finding_triage", finding.pk), {"reason": "noise", "version": finding.version})
    finding.refresh_from_db()
    assert response.status_code == 400 and b"Choose an action." in response.content
    assert finding.status == "open"


def test_a_list_rows_triage_form_offers_only_the_rows_transitions(world, login, finding):
    Finding.objects.filter(pk=finding.pk).update(status="risk_accepted", triage_reason="ok",
                                                 risk_accepted_until=timezone.now() + timedelta(days=3))
    content = login(world.analyst).get(url("finding_triage", finding.pk)).content.decode()
    assert _actions(content) == ["false_positive", "risk_accepted", "open"] and "<select" not in content


def test_the_bulk_bar_has_no_default_action_and_shows_the_expiry_under_accept_risk_only(world, login, finding):
    content = login(world.analyst).get(url("finding_list"), {"status": "all"}).content.decode()
    bulk = content.split('id="bulk-form"', 1)[1].split("</form>", 1)[0]
    # The triage part (the ownership actions, apart under their own <details>, choose an assignee).
    triage = bulk.split('<details class="bulk-ownership"', 1)[0]
    assert "<select" not in triage and _actions(bulk) == ["false_positive", "risk_accepted", "open"]
    assert 'name="until"' not in bulk.split('<details class="accept-risk"', 1)[0]
    # Enter in the reason field submits nothing: the form's first (default) button is disabled.
    assert bulk.split("<button", 1)[1].split(">", 1)[0].count("disabled") == 1


# -- the list's node field, sub-line and sorting (QA walk, issue 8) -------------------------


def test_the_node_field_takes_an_address_or_a_name_and_lists_that_nodes_findings_only(world, login, finding):
    other = FindingFactory(node=NodeFactory(org=world.org, name="db-1"), title="Other node")
    client = login(world.viewer)
    page = client.get(url("finding_list")).content.decode()
    assert 'name="host"' in page and "<label for=\"f-host\">Node</label>" in page
    by_address = client.get(url("finding_list"), {"host": finding.node.address}).content.decode()
    assert "Exposed Redis" in by_address and "Other node" not in by_address
    by_name = client.get(url("finding_list"), {"host": "DB-1"}).content.decode()
    assert "Other node" in by_name and "Exposed Redis" not in by_name and other.pk
    # Another organization's node by its address matches nothing here.
    foreign = NodeFactory(org=world.other_org, address="127.0.99.9")
    FindingFactory(node=foreign, title="Foreign")
    assert "Foreign" not in client.get(url("finding_list"), {"host": "127.0.99.9"}).content.decode()


def test_a_cve_rows_sub_line_names_its_cve_once(world, login, node):
    FindingFactory(node=node, source="cve", rule_id="CVE-2023-38408", cve_ids=["CVE-2023-38408"], title="ssh-agent")
    content = login(world.viewer).get(url("finding_list")).content.decode()
    assert content.count("CVE-2023-38408") == 1


def test_the_status_column_sorts_and_the_unindexed_columns_say_why_they_do_not(world, login, node):
    FindingFactory(node=node, status="risk_accepted", title="Accepted one", triage_reason="ok",
                   risk_accepted_until=timezone.now() + timedelta(days=3))
    FindingFactory(node=node, status="false_positive", title="False one", triage_reason="noise")
    client = login(world.viewer)
    content = client.get(url("finding_list"), {"status": "all"}).content.decode()
    assert "sort=-status" in content and "Not sortable (no index at this scale)" in content
    ascending = client.get(url("finding_list"), {"sort": "status", "status": "all"}).content.decode()
    assert ascending.index("False one") < ascending.index("Accepted one")
    descending = client.get(url("finding_list"), {"sort": "-status", "status": "all"}).content.decode()
    assert descending.index("Accepted one") < descending.index("False one")


def test_the_bulk_bar_offers_no_reopen_when_the_filter_shows_open_findings_only(world, login, finding):
    client = login(world.analyst)
    bulk = client.get(url("finding_list"), {"status": "open"}).content.decode().split('id="bulk-form"', 1)[1]
    assert _actions(bulk.split("</form>", 1)[0]) == ["false_positive", "risk_accepted"]
