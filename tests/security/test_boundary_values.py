"""Boundary values in every list filter and form, console and API: a field error at worst, never a 5xx.

The API's parameters are read from the router (every list's FilterSet and pagination, every GET
action of an object); the console's from the forms and filter keys each page reads. A filter
added to one of them is fed these values too.
"""

from __future__ import annotations

import base64

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from config.api import router
from interventions.forms import InterventionFilterForm
from nodes.forms import NodeAddForm, NodeFilterForm
from orgs.forms import ApiTokenForm, AuditFilterForm
from orgs.models import ApiToken
from orgs.services import api_token_create
from reports.forms import ReportRequestForm
from reports.models import Report, WebhookEndpoint
from scans.forms import BulkTriageForm, SessionStartForm, TriageForm
from scans.selectors import FILTER_KEYS
from tests.factories import FindingFactory, NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


BOUNDARY_VALUES = [
    "99999999999999999999999", "-99999999999999999999999", "9223372036854775808", "-1", "0",
    "9999-12-31", "0001-01-01", "cD1hYmM=", _cursor("p=99999999999999999999999"), _cursor("o=-5&p=1"),
    "%%%", "1e400",
]
API_PAGING = ("page", "page_size", "cursor")


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "off"


@pytest.fixture
def objects(world):
    node = NodeFactory(org=world.org, address="127.0.80.1")
    session = ScanSessionFactory(org=world.org)
    ScanJobFactory(session=session, node=node)
    endpoint = WebhookEndpoint.objects.create(org=world.org, url="http://127.0.0.1:9/hook", secret="s",
                                              events=["session.finished"])
    return {"node": node, "session": session, "finding": FindingFactory(org=world.org, node=node),
            "endpoint": endpoint, "report": Report.objects.create(org=world.org, kind=Report.Kind.ORGANIZATION)}


def _assert_no_5xx(response, what):
    assert response.status_code < 500, (what, response.status_code, response.content[:300])


# -- the seven 500s of the penetration test -------------------------------------------------------


@pytest.fixture
def api(world):
    _, key = api_token_create(org=world.org, name="boundary", access=ApiToken.Access.READ_WRITE)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.parametrize("path", ["/api/v1/findings/", "/api/v1/sessions/{session}/jobs/",
                                  "/api/v1/webhooks/{endpoint}/deliveries/"])
@pytest.mark.parametrize("cursor", ["cD1hYmM=", _cursor("p=99999999999999999999999"), "not base64!"])
def test_a_cursor_whose_position_is_not_an_id_is_a_400_problem(api, objects, path, cursor):
    url = path.format(session=objects["session"].pk, endpoint=objects["endpoint"].pk)
    response = api.get(url, {"cursor": cursor})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == {"cursor": ["Not a cursor this list handed out: start again from the "
                                                    "first page."]}


def test_a_cursor_the_list_handed_out_still_pages(api, objects, world):
    FindingFactory(org=world.org, node=objects["node"])
    first = api.get("/api/v1/findings/", {"page_size": 1}).json()
    second = api.get(first["next"])
    assert second.status_code == 200 and second.json()["results"][0]["id"] != first["results"][0]["id"]


@pytest.mark.parametrize("key", ["until", "since"])
def test_the_audit_page_answers_a_far_day_with_a_form_error(world, login, key):
    response = login(world.owner).get(reverse("orgs:audit", args=["acme"]), {key: "9999-12-31"})
    assert response.status_code == 200
    assert "Out of the supported range of dates" in response.content.decode()


def test_the_audit_export_refuses_a_far_day_instead_of_exporting_everything(world, login):
    response = login(world.owner).get(reverse("orgs:audit_export", args=["acme"]), {"until": "9999-12-31"})
    assert response.status_code == 400
    assert "To: Out of the supported range of dates" in response.content.decode()


@pytest.mark.parametrize("key", ["first_seen_to", "last_seen_to", "first_seen_from", "last_seen_from"])
def test_the_findings_page_says_a_far_day_was_not_applied(world, login, objects, key):
    response = login(world.analyst).get(reverse("scans:finding_list", args=["acme"]), {key: "9999-12-31"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "Out of the supported range of dates (years 1 to 9998). This filter was not applied." in content
    assert f"finding-{objects['finding'].pk}" in content or str(objects["finding"].title) in content


def test_bulk_triage_of_an_id_no_database_can_hold_is_a_form_error(world, login, objects):
    client = login(world.analyst)
    response = client.post(reverse("scans:finding_bulk_triage", args=["acme"]),
                           {"status": "false_positive", "reason": "decoy", "finding": ["99999999999999999999999"]},
                           follow=True)
    assert response.status_code == 200
    assert "is not a finding id: nothing was triaged." in response.content.decode()
    objects["finding"].refresh_from_db()
    assert objects["finding"].status == "open"


# -- every filter and form, fed every boundary value ---------------------------------------------


def _api_lists():
    """(list URL, its query parameters) for every viewset of the router, and every GET action on an object."""
    for prefix, viewset, basename in router.registry:
        filterset = getattr(viewset, "filterset_class", None)
        names = list(filterset.base_filters) if filterset else []
        if "list" in dir(viewset):
            yield f"/api/v1/{prefix}/", [*names, *API_PAGING]
        for action in viewset.get_extra_actions():
            if action.detail and "get" in action.mapping and "(?P<" not in action.url_path:
                yield f"/api/v1/{prefix}/{{{basename}}}/{action.url_path}/", list(API_PAGING)


API_CASES = [(url, name) for url, names in _api_lists() for name in names]


@pytest.mark.parametrize(("url", "name"), API_CASES, ids=[f"{u}?{n}" for u, n in API_CASES])
def test_api_list_parameters_answer_boundary_values_without_a_server_error(api, objects, url, name):
    ids = {"node": objects["node"].pk, "session": objects["session"].pk, "finding": objects["finding"].pk,
           "webhook": objects["endpoint"].pk, "report": objects["report"].pk}
    for basename, pk in ids.items():
        url = url.replace("{" + basename + "}", str(pk))
    assert "{" not in url, f"no sample object for {url}: add one to the fixture"
    for value in BOUNDARY_VALUES:
        _assert_no_5xx(api.get(url, {name: value}), f"{url}?{name}={value}")


def _fields(form_class) -> list[str]:
    return list(form_class.base_fields)


CONSOLE_LISTS = [
    ("nodes:list", [*_fields(NodeFilterForm), "page"]),
    ("scans:finding_list", [*FILTER_KEYS, "page"]),
    ("orgs:audit", [*_fields(AuditFilterForm), "page"]),
    ("orgs:audit_export", _fields(AuditFilterForm)),
    ("interventions:list", [*_fields(InterventionFilterForm), "page"]),
    ("scans:session_list", ["page"]),
    ("reports:list", ["page"]),
    ("scans:session_new", ["node"]),
]
CONSOLE_GET = [(name, key) for name, keys in CONSOLE_LISTS for key in keys]


@pytest.mark.parametrize(("url_name", "key"), CONSOLE_GET, ids=[f"{n}?{k}" for n, k in CONSOLE_GET])
def test_console_list_filters_answer_boundary_values_without_a_server_error(world, login, objects, url_name, key):
    client = login(world.owner)
    url = reverse(url_name, args=["acme"])
    for value in BOUNDARY_VALUES:
        _assert_no_5xx(client.get(url, {key: value}), f"{url}?{key}={value}")


def test_the_session_page_pages_its_jobs_whatever_the_page_number(world, login, objects):
    client = login(world.owner)
    url = reverse("scans:session_detail", args=["acme", objects["session"].pk])
    for value in BOUNDARY_VALUES:
        _assert_no_5xx(client.get(url, {"jobs_page": value}), f"{url}?jobs_page={value}")


CONSOLE_FORMS = [
    ("scans:finding_bulk_triage", None, {"status": "false_positive", "reason": "r"},
     [*_fields(BulkTriageForm), "finding"]),
    ("scans:finding_triage", "finding", {"status": "false_positive", "reason": "r"}, _fields(TriageForm)),
    ("scans:session_new", None, {"profile": "light", "scope": "nodes"}, _fields(SessionStartForm)),
    ("nodes:add", None, {"address": "127.0.80.2"}, _fields(NodeAddForm)),
    ("orgs:token_create", None, {"name": "t", "access": "read"}, _fields(ApiTokenForm)),
    ("reports:request", None, {"kind": "node", "format": "csv"}, _fields(ReportRequestForm)),
]
CONSOLE_POST = [(name, obj, base, key) for name, obj, base, keys in CONSOLE_FORMS for key in keys]


@pytest.mark.parametrize(("url_name", "obj", "base", "key"), CONSOLE_POST,
                         ids=[f"{n}:{k}" for n, _, _, k in CONSOLE_POST])
def test_console_forms_answer_boundary_values_without_a_server_error(world, login, objects, url_name, obj, base, key):
    client = login(world.owner)
    url = reverse(url_name, args=["acme", objects[obj].pk] if obj else ["acme"])
    for value in BOUNDARY_VALUES:
        _assert_no_5xx(client.post(url, {**base, key: value}), f"POST {url} {key}={value}")

