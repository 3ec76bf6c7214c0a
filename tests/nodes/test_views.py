"""Console pages for nodes: list, add, validate, bulk add, detail, edit, enable/disable, scan now."""

import pytest
from django.test import Client
from django.urls import reverse

from interventions.models import Intervention
from nodes.models import Node, NodeScore, NodeSnapshot
from orgs.models import AuditEvent
from scans.models import ScanSession
from tests.factories import FindingFactory, NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def url(name, *args, slug="acme"):
    # "Scan this node now" starts a session: the scans app serves it, at the node's address.
    return reverse("scans:node_scan" if name == "scan" else f"nodes:{name}", args=[slug, *args])


# --- the checklist, for every view and partial ------------------------------------------------

# (view, method, needs a node, is a write)
VIEWS = [
    ("list", "get", False, False),
    ("detail", "get", True, False),
    ("add", "get", False, True),
    ("add", "post", False, True),
    ("validate", "get", False, True),
    ("bulk", "get", False, True),
    ("bulk", "post", False, True),
    ("edit", "get", True, True),
    ("edit", "post", True, True),
    ("enable", "post", True, True),
    ("scan", "post", True, True),
]


def _call(client, view, method, node, slug="acme"):
    target = url(view, *([node.pk] if node else []), slug=slug)
    return getattr(client, method)(target)


@pytest.mark.parametrize(("view", "method", "needs_node", "write"), VIEWS)
def test_an_outsider_gets_404(world, login, view, method, needs_node, write):
    node = NodeFactory(org=world.org) if needs_node else None
    assert _call(login(world.outsider), view, method, node).status_code == 404


@pytest.mark.parametrize(("view", "method", "needs_node", "write"), [v for v in VIEWS if v[2]])
def test_another_organizations_node_is_404_even_through_ones_own_organization(world, login, view, method, needs_node,
                                                                             write):
    theirs = NodeFactory(org=world.other_org)
    assert _call(login(world.owner), view, method, theirs).status_code == 404


@pytest.mark.parametrize(("view", "method", "needs_node", "write"), [v for v in VIEWS if v[3]])
def test_a_viewer_cannot_write(world, login, view, method, needs_node, write):
    node = NodeFactory(org=world.org) if needs_node else None
    assert _call(login(world.viewer), view, method, node).status_code == 403


@pytest.mark.parametrize(("view", "method", "needs_node", "write"), VIEWS)
def test_an_anonymous_visitor_is_sent_to_login(world, client, view, method, needs_node, write):
    node = NodeFactory(org=world.org) if needs_node else None
    response = _call(client, view, method, node)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("view", "method"), [("list", "post"), ("detail", "post"), ("validate", "post"),
                                              ("enable", "get"), ("scan", "get"), ("add", "delete")])
def test_a_wrong_method_is_405(world, login, view, method):
    node = NodeFactory(org=world.org)
    target = url(view, node.pk) if view in ("detail", "enable", "scan") else url(view)
    assert getattr(login(world.owner), method)(target).status_code == 405


@pytest.mark.parametrize(("view", "needs_node"), [("add", False), ("bulk", False), ("edit", True), ("enable", True),
                                                  ("scan", True)])
def test_posts_without_a_csrf_token_are_refused(world, view, needs_node):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    node = NodeFactory(org=world.org) if needs_node else None
    target = url(view, *([node.pk] if node else []))
    assert client.post(target, {"address": "127.0.0.9", "text": "127.0.0.9", "enabled": "0"}).status_code == 403
    assert Node.objects.filter(org=world.org).count() == (1 if node else 0)


# --- the list ----------------------------------------------------------------------------------


def _rows(org, n):
    nodes = Node.objects.bulk_create(
        [Node(org=org, address=f"127.1.{i // 250}.{i % 250 + 1}", name=f"node-{i:04d}", tags=["bulk"],
              protocols=["ssh"] if i % 2 else ["http"]) for i in range(n)]
    )
    NodeSnapshot.objects.bulk_create(
        [NodeSnapshot(node=node, org=org, score=i % 100, grade="ABCDF"[i % 5], critical=i % 3) for i, node in
         enumerate(nodes)]
    )


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize("query", ["", "?sort=-score&grade=A&protocol=ssh&tag=bulk&q=node", "?sort=tags&page=2"])
def test_the_list_reads_the_same_number_of_queries_with_10_and_1000_nodes(world, login, django_assert_num_queries,
                                                                          htmx, query):
    client = login(world.viewer)
    headers = {"HX-Request": "true"} if htmx else {}
    _rows(world.org, 10)
    client.get(url("list"))  # warm the session and the registry cache
    # With the organization's zones, for the zone filter's choices.
    with django_assert_num_queries(8 if not htmx else 6) as small:
        assert client.get(url("list") + query, headers=headers).status_code == 200
    Node.objects.all().delete()
    _rows(world.org, 1000)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url("list") + query, headers=headers)
    assert response.status_code == 200


def test_the_list_paginates_in_the_database(world, login):
    _rows(world.org, 120)
    client = login(world.viewer)
    content = client.get(url("list") + "?per=50&page=3").content.decode()
    assert "Page 3 of 3" in content and content.count("data-row") == 20


def test_the_list_searches_address_name_and_hostname(world, login):
    NodeFactory(org=world.org, address="127.0.0.5", name="alpha")
    NodeFactory(org=world.org, address="127.0.0.6", name="beta", hostname="gamma.lab.internal")
    client = login(world.viewer)
    assert "alpha" in client.get(url("list") + "?q=127.0.0.5").content.decode()
    content = client.get(url("list") + "?q=gamma").content.decode()
    assert "beta" in content and "alpha" not in content


@pytest.mark.parametrize(
    ("query", "expected"),
    [("grade=A", {"a"}), ("grade=none", {"unscored"}), ("protocol=ssh", {"a"}), ("tag=prod", {"b"}),
     ("state=down", {"b"}), ("enabled=no", {"unscored"}), ("enabled=yes", {"a", "b"}), ("grade=Z", {"a", "b", "unscored"})],
)
def test_the_list_filters_by_grade_protocol_tag_state_and_enabled(world, login, query, expected):
    a = NodeFactory(org=world.org, name="a", protocols=["ssh", "http"], state="up")
    b = NodeFactory(org=world.org, name="b", tags=["prod", "eu"], protocols=["sshd"], state="down")
    NodeFactory(org=world.org, name="unscored", enabled=False, tags=["production"])
    NodeSnapshot.objects.filter(node=a).update(score=95, grade="A")
    NodeSnapshot.objects.filter(node=b).update(score=50, grade="D")
    response = login(world.viewer).get(url("list") + "?" + query)
    names = {row.node.name for row in response.context["page"].object_list}
    assert names == expected


@pytest.mark.parametrize("sort", ["address", "name", "score", "grade", "findings", "critical", "high", "medium", "low",
                                  "protocols", "tags", "state", "enabled", "last_scan", "interventions"])
def test_every_column_sorts_both_ways(world, login, sort):
    _rows(world.org, 12)
    client = login(world.viewer)
    up = [r.pk for r in client.get(url("list") + f"?sort={sort}").context["page"].object_list]
    down = [r.pk for r in client.get(url("list") + f"?sort=-{sort}").context["page"].object_list]
    assert len(up) == len(down) == 12
    assert client.get(url("list") + f"?sort={sort}").context["columns"]


def test_sorting_by_score_puts_unscored_nodes_last_both_ways(world, login):
    low, high = NodeFactory(org=world.org, name="low"), NodeFactory(org=world.org, name="high")
    NodeFactory(org=world.org, name="none")
    NodeSnapshot.objects.filter(node=low).update(score=10)
    NodeSnapshot.objects.filter(node=high).update(score=90)
    client = login(world.viewer)
    assert [r.node.name for r in client.get(url("list") + "?sort=score").context["page"].object_list] == \
        ["low", "high", "none"]
    assert [r.node.name for r in client.get(url("list") + "?sort=-score").context["page"].object_list] == \
        ["high", "low", "none"]


def test_an_htmx_request_gets_only_the_table_and_the_header_link_keeps_the_filter(world, login):
    NodeFactory(org=world.org, name="web", tags=["prod"])
    response = login(world.viewer).get(url("list") + "?tag=prod&sort=name", headers={"HX-Request": "true"})
    content = response.content.decode()
    assert "<html" not in content and 'id="node-table"' in content
    assert "tag=prod" in content and 'aria-sort="ascending"' in content and "sort=-name" in content
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_whole_page(world, login):
    response = login(world.viewer).get(url("list"), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert b"<html" in response.content


def test_the_list_links_rows_offers_scan_selected_and_scan_all_to_writers(world, login):
    node = NodeFactory(org=world.org)
    content = login(world.analyst).get(url("list")).content.decode()
    assert url("detail", node.pk) in content
    assert 'action="/o/acme/sessions/new/"' in content and f'name="node" value="{node.pk}"' in content
    assert "Scan selected" in content and 'href="/o/acme/sessions/new/"' in content


def test_a_row_shows_each_column_with_the_nodes_own_text_escaped(world, login):
    node = NodeFactory(org=world.org, address="127.0.0.9", hostname="db<1>.lab", name='Bob "&" <i>', enabled=False,
                       state="down", protocols=["redis"], tags=["a&b c"])
    NodeSnapshot.objects.filter(node=node).update(score=42, grade="D", critical=1, high=2, last_scan_status="failed",
                                                  open_interventions=3)
    row = login(world.analyst).get(url("list")).content.decode().split('<tr data-row class="is-disabled">')[1]
    row = row.split("</tr>")[0]
    assert f'name="node" value="{node.pk}" aria-label="Select 127.0.0.9"' in row
    assert '<div class="muted">db&lt;1&gt;.lab</div>' in row
    assert 'title="Bob &quot;&amp;&quot; &lt;i&gt;">Bob &quot;&amp;&quot; &lt;i&gt;</td>' in row
    assert '<td class="num">42</td><td><span class="grade grade-D">D</span></td>' in row
    assert '<td class="num">3</td><td class="num">1</td><td class="num">2</td>' in row  # open findings, critical, high
    assert '<span class="tag">redis</span>' in row and '?tag=a%26b%20c">a&amp;b c</a>' in row
    assert '<span class="status status-down">Down</span>' in row and "status-disabled" in row
    assert '<span class="status status-failed">failed</span>' in row and row.endswith('<td class="num">3</td>')


def test_a_viewer_sees_the_list_without_write_actions(world, login):
    NodeFactory(org=world.org)
    content = login(world.viewer).get(url("list")).content.decode()
    assert "Scan selected" not in content and "Add a node" not in content


def test_an_empty_list_says_what_to_do(world, login):
    assert b"No nodes yet" in login(world.analyst).get(url("list")).content


# --- add, validate, bulk ----------------------------------------------------------------------


def test_an_analyst_adds_a_node_and_lands_on_it(world, login):
    response = login(world.analyst).post(url("add"), {"address": "127.0.0.8", "name": "db", "tags": "prod, eu"})
    node = Node.objects.get(org=world.org, address="127.0.0.8")
    assert response.status_code == 302 and response["Location"] == url("detail", node.pk)
    assert node.tags == ["prod", "eu"] and AuditEvent.objects.filter(verb="node.created", actor=world.analyst).exists()


def test_an_address_outside_the_scope_is_shown_on_the_form_with_the_reason(world, login, settings):
    settings.SCAN_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]
    response = login(world.analyst).post(url("add"), {"address": "10.0.0.1"})
    assert response.status_code == 400
    assert "outside the organization&#x27;s scope" in response.content.decode()
    assert not Node.objects.filter(org=world.org).exists()


def test_the_validate_partial_accepts_an_address_in_scope(world, login):
    response = login(world.analyst).get(url("validate"), {"address": "127.0.0.9"})
    assert response.status_code == 200 and b"inside the scope" in response.content and b"<html" not in response.content


def test_the_validate_partial_gives_the_refusal_reason(world, login):
    content = login(world.analyst).get(url("validate"), {"address": "10.0.0.1"}).content.decode()
    assert "SCAN_ALLOWED_NETWORKS" in content


def test_the_validate_partial_names_a_duplicate_but_not_the_node_being_edited(world, login):
    node = NodeFactory(org=world.org, address="127.0.0.5")
    client = login(world.analyst)
    assert b"already a node" in client.get(url("validate"), {"address": "127.0.0.5"}).content
    assert b"already a node" not in client.get(url("validate"), {"address": "127.0.0.5", "node": node.pk}).content


def test_a_pasted_list_reports_each_row(world, login, settings):
    settings.SCAN_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]
    NodeFactory(org=world.org, address="127.0.0.2")
    response = login(world.analyst).post(url("bulk"), {"text": "127.0.0.1 web\n127.0.0.2\n10.0.0.1\n"})
    assert response.status_code == 200
    report = response.context["report"]
    assert [r.outcome for r in report.rows] == ["added", "duplicate", "refused"]
    content = response.content.decode()
    assert "1 added" in content and "skipped" in content and "outside the organization" in content


def test_a_csv_upload_adds_its_rows(world, login):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("nodes.csv", b"address,name,tags\n127.0.0.3,api,prod;eu\n", content_type="text/csv")
    response = login(world.analyst).post(url("bulk"), {"file": upload})
    assert response.status_code == 200
    assert Node.objects.get(org=world.org, address="127.0.0.3").tags == ["prod", "eu"]


def test_a_malformed_csv_adds_nothing_and_says_which_line(world, login):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("nodes.csv", b"127.0.0.3\n127.0.0.4,a,b,c,d\n", content_type="text/csv")
    response = login(world.analyst).post(url("bulk"), {"file": upload})
    assert response.status_code == 400 and b"Line 2" in response.content
    assert not Node.objects.filter(org=world.org).exists()


def test_the_bulk_form_wants_exactly_one_source(world, login):
    assert login(world.analyst).post(url("bulk"), {"text": ""}).status_code == 400


# --- detail, edit, enable, scan ----------------------------------------------------------------


def test_the_detail_shows_services_protocols_findings_history_jobs_and_interventions(world, login):
    node = NodeFactory(
        org=world.org, name="rpc-1", state="up", protocols=["ssh"], discovery_confidence=0.9,
        services=[{"host": "127.0.0.5", "port": 22, "protocol": "tcp", "service": "ssh", "product": "OpenSSH",
                   "version": "8.9p1", "cpe": "cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*", "tls": False}],
        discovery_evidence={"protocols": [{"protocol": "ssh", "port": 22, "confidence": 0.9, "tls": False,
                                           "version": "8.9p1", "evidence": [{"probe": "banner", "signature": "SSH-",
                                                                             "matched": "SSH-2.0-OpenSSH_8.9p1",
                                                                             "weight": 0.9}]}]},
    )
    finding = FindingFactory(node=node, title="Weak key exchange", severity="high")
    FindingFactory(node=node, title="Fixed thing", status="fixed")
    NodeScore.objects.create(node=node, score=70, grade="C")
    job = ScanJobFactory(session=ScanSessionFactory(org=world.org), node=node, scanner="ssh", status="failed",
                         error="connection reset")
    Intervention.objects.create(org=world.org, kind="job_exhausted", subject=f"job:{job.pk}", title="ssh failed",
                                node=node, job=job, session=job.session)
    content = login(world.viewer).get(url("detail", node.pk)).content.decode()
    for expected in ("OpenSSH", "8.9p1", "SSH-2.0-OpenSSH_8.9p1", "90 %", "Weak key exchange",
                     f"/o/acme/findings/{finding.pk}/", f"/o/acme/findings/?node={node.pk}", "<svg",
                     f"/o/acme/sessions/{job.session_id}/", "connection reset", "ssh failed"):
        assert expected in content, expected
    assert "Fixed thing" not in content


def test_the_detail_reads_a_bounded_number_of_queries(world, login, django_assert_max_num_queries):
    node = NodeFactory(org=world.org)
    for _ in range(30):
        FindingFactory(node=node)
    job = ScanJobFactory(session=ScanSessionFactory(org=world.org), node=node)
    Intervention.objects.create(org=world.org, kind="job_exhausted", subject=f"job:{job.pk}", title="t", node=node,
                                job=job, session=job.session)
    NodeScore.objects.create(node=node, score=50, grade="D")
    client = login(world.viewer)
    client.get(url("detail", node.pk))
    # Session, user, membership, node, findings, scores, jobs, interventions, the zones to choose from, the
    # navigation's count and organizations.
    with django_assert_max_num_queries(11):
        assert client.get(url("detail", node.pk)).status_code == 200


def test_a_node_without_scans_says_what_comes_next(world, login):
    node = NodeFactory(org=world.org)
    content = login(world.analyst).get(url("detail", node.pk)).content.decode()
    assert "No open port known yet" in content and "Scan this node now" in content


def test_an_edit_saves_and_a_refused_address_stays_on_the_form(world, login, settings):
    settings.SCAN_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]
    node = NodeFactory(org=world.org, address="127.0.0.5")
    client = login(world.analyst)
    assert client.get(url("edit", node.pk)).status_code == 200
    response = client.post(url("edit", node.pk), {"address": "10.0.0.1", "name": "x", "hostname": "", "tags": ""})
    assert response.status_code == 400 and b"outside the organization" in response.content
    response = client.post(url("edit", node.pk), {"address": "127.0.0.5", "name": "db", "hostname": "", "tags": "a,b"})
    assert response.status_code == 302
    node.refresh_from_db()
    assert (node.name, node.tags) == ("db", ["a", "b"])


def test_disable_then_enable(world, login):
    node = NodeFactory(org=world.org)
    client = login(world.analyst)
    assert client.post(url("enable", node.pk), {"enabled": "0"}).status_code == 302
    assert Node.objects.get(pk=node.pk).enabled is False
    assert b"disabled" in client.get(url("detail", node.pk)).content
    client.post(url("enable", node.pk), {"enabled": "1"})
    assert Node.objects.get(pk=node.pk).enabled is True


def test_scan_now_starts_a_console_session_for_the_node_and_follows_it(world, login):
    node = NodeFactory(org=world.org, address="127.0.0.5")
    response = login(world.analyst).post(url("scan", node.pk))
    session = ScanSession.objects.get(org=world.org)
    assert response.status_code == 302 and response["Location"] == f"/o/acme/sessions/{session.pk}/"
    assert session.trigger == ScanSession.Trigger.CONSOLE and session.targets == ["127.0.0.5"]
    assert session.requested_by == world.analyst


def test_scan_now_on_a_disabled_node_shows_why_it_did_not_start(world, login):
    node = NodeFactory(org=world.org, address="127.0.0.5", enabled=False)
    client = login(world.analyst)
    response = client.post(url("scan", node.pk), follow=True)
    assert not ScanSession.objects.exists()
    assert b"The scan did not start" in response.content and b"disabled" in response.content
