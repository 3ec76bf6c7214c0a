"""The checklist, for every endpoint: anonymous, revoked and expired tokens → 401; another
organization's object → 404; a read token or a viewer's session writing → 403 — all as
RFC 9457 problems."""

from __future__ import annotations

import pytest

from interventions.models import Intervention
from scans.models import ImportRequest
from tests.api.conftest import problem
from tests.factories import FindingFactory, NodeFactory, ScanJobFactory, ScanSessionFactory


@pytest.fixture
def objects(world):
    """One of each object in acme and in globex: {"acme": {...}, "globex": {...}}."""
    out = {}
    for name, org in (("acme", world.org), ("globex", world.other_org)):
        node = NodeFactory(org=org)
        session = ScanSessionFactory(org=org)
        job = ScanJobFactory(session=session, node=node)
        finding = FindingFactory(node=node)
        intervention = Intervention.objects.create(org=org, kind=Intervention.Kind.JOB_EXHAUSTED,
                                                   subject=f"job:{job.pk}", title="tls failed", job=job,
                                                   session=session, node=node)
        upload = ImportRequest.objects.create(org=org, format="nuclei", filename="n.jsonl")
        out[name] = {"node": node.pk, "session": session.pk, "finding": finding.pk,
                     "intervention": intervention.pk, "import": upload.pk}
    return out


# (name, method, path with {kind} placeholders, body); writes are everything but GET.
ENDPOINTS = [
    ("organization", "get", "/api/v1/organization/", None),
    ("nodes list", "get", "/api/v1/nodes/", None),
    ("node detail", "get", "/api/v1/nodes/{node}/", None),
    ("node snapshot", "get", "/api/v1/nodes/{node}/snapshot/", None),
    ("node scores", "get", "/api/v1/nodes/{node}/scores/", None),
    ("node create", "post", "/api/v1/nodes/", {"address": "127.0.9.9"}),
    ("node bulk", "post", "/api/v1/nodes/bulk/", {"nodes": [{"address": "127.0.9.10"}]}),
    ("node edit", "patch", "/api/v1/nodes/{node}/", {"name": "renamed"}),
    ("node delete", "delete", "/api/v1/nodes/{node}/", None),
    ("sessions list", "get", "/api/v1/sessions/", None),
    ("session detail", "get", "/api/v1/sessions/{session}/", None),
    ("session jobs", "get", "/api/v1/sessions/{session}/jobs/", None),
    ("session create", "post", "/api/v1/sessions/", {}),
    ("session cancel", "post", "/api/v1/sessions/{session}/cancel/", {}),
    ("findings list", "get", "/api/v1/findings/", None),
    ("finding detail", "get", "/api/v1/findings/{finding}/", None),
    ("finding triage", "patch", "/api/v1/findings/{finding}/", {"status": "false_positive", "reason": "lab"}),
    ("imports list", "get", "/api/v1/imports/", None),
    ("import detail", "get", "/api/v1/imports/{import}/", None),
    ("import create", "post", "/api/v1/imports/", {"format": "nuclei"}),
    ("interventions list", "get", "/api/v1/interventions/", None),
    ("intervention detail", "get", "/api/v1/interventions/{intervention}/", None),
    ("intervention acknowledge", "post", "/api/v1/interventions/{intervention}/acknowledge/", {}),
    ("intervention resolve", "post", "/api/v1/interventions/{intervention}/resolve/", {}),
    ("intervention dismiss", "post", "/api/v1/interventions/{intervention}/dismiss/", {}),
    ("intervention retry", "post", "/api/v1/interventions/{intervention}/retry/", {}),
    ("audit", "get", "/api/v1/audit/", None),
    ("feeds", "get", "/api/v1/feeds/", None),
]
WRITES = [e for e in ENDPOINTS if e[1] != "get"]
DETAIL = [e for e in ENDPOINTS if "{" in e[2]]
ids = [e[0] for e in ENDPOINTS]


def _call(client, method, path, body):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize(("name", "method", "path", "body"), ENDPOINTS, ids=ids)
def test_anonymous_callers_are_told_to_authenticate(objects, name, method, path, body):
    from rest_framework.test import APIClient

    response = _call(APIClient(), method, path.format(**objects["acme"]), body)
    problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("kind", ["revoked", "expired"])
@pytest.mark.parametrize(("name", "method", "path", "body"), ENDPOINTS, ids=ids)
def test_a_revoked_or_expired_token_is_refused(api, objects, kind, name, method, path, body):
    response = _call(api(kind), method, path.format(**objects["acme"]), body)
    problem(response, 401, "authentication_failed")


@pytest.mark.parametrize(("name", "method", "path", "body"), DETAIL, ids=[e[0] for e in DETAIL])
def test_another_organizations_object_is_not_found(api, objects, name, method, path, body):
    response = _call(api("read_write"), method, path.format(**objects["globex"]), body)
    problem(response, 404, "not_found")


@pytest.mark.parametrize(("name", "method", "path", "body"), DETAIL, ids=[e[0] for e in DETAIL])
def test_another_organizations_object_is_not_found_for_a_console_user_either(session_api, world, objects, name,
                                                                             method, path, body):
    response = _call(session_api(world.owner), method, path.format(**objects["globex"]), body)
    problem(response, 404, "not_found")


@pytest.mark.parametrize(("name", "method", "path", "body"), WRITES, ids=[e[0] for e in WRITES])
def test_a_read_token_cannot_write(api, objects, name, method, path, body):
    response = _call(api("read"), method, path.format(**objects["acme"]), body)
    body = problem(response, 403, "permission_denied")
    assert "read-only" in body["detail"]


@pytest.mark.parametrize(("name", "method", "path", "body"), WRITES, ids=[e[0] for e in WRITES])
def test_a_viewers_session_cannot_write(session_api, world, objects, name, method, path, body):
    response = _call(session_api(world.viewer), method, path.format(**objects["acme"]), body)
    problem(response, 403, "permission_denied")


@pytest.mark.parametrize(("name", "method", "path", "body"), WRITES, ids=[e[0] for e in WRITES])
def test_a_console_session_write_needs_the_csrf_token(session_api, world, objects, name, method, path, body):
    response = _call(session_api(world.analyst, csrf=True), method, path.format(**objects["acme"]), body)
    body = problem(response, 403, "permission_denied")
    assert "CSRF" in body["detail"]


@pytest.mark.parametrize(("name", "method", "path", "body"), [e for e in ENDPOINTS if e[1] == "get"],
                         ids=[e[0] for e in ENDPOINTS if e[1] == "get"])
def test_every_read_answers_a_read_token_except_the_audit_log(api, objects, name, method, path, body):
    response = _call(api("read"), method, path.format(**objects["acme"]), body)
    if name == "audit":
        problem(response, 403, "permission_denied")
    else:
        assert response.status_code == 200, response.content[:300]


def test_a_wrong_method_is_a_problem(api, objects):
    response = api().put(f"/api/v1/findings/{objects['acme']['finding']}/", {}, format="json")
    problem(response, 405, "method_not_allowed")


def test_an_unknown_api_path_is_a_problem_not_the_console_page(api):
    problem(api().get("/api/v1/nothing-here/"), 404, "not_found")


def test_a_token_of_another_organization_sees_only_its_own(api, objects):
    response = api("other").get("/api/v1/nodes/")
    assert [row["id"] for row in response.json()["results"]] == [objects["globex"]["node"]]
