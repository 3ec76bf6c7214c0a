"""The tenancy matrix: every route from the URL resolver, for each kind of caller, with no leak.

Routes are read from the resolver, so a route added tomorrow is walked too: a console route
with a keyword this file has no sample object for, or a top-level route nobody classified,
fails here until someone says what it is.

Console routes (``/o/<slug>/...``): anonymous → login; a member of another organization → 404
on this organization's pages and on this organization's objects reached through their own
slug; a viewer's POST → 403 (or 405 where the route takes no POST; a member's own digest setting
is theirs to change whatever their role); a POST without the CSRF
token → 403. API routes (``/api/v1/...``): anonymous and revoked tokens → 401; another
organization's token on this organization's object → 404; a read token's write → 403.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from interventions.models import Intervention
from orgs.models import ApiToken, Invitation, Membership, Zone
from orgs.services import api_token_create
from reports.models import Report, WebhookDelivery, WebhookEndpoint
from scans.models import ImportRequest, SavedView
from tests.factories import FindingFactory, NodeFactory, ScanJobFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db

# Top-level routes outside /o/<slug>/ and /api/v1/, each with what it is.
TOP_LEVEL = {
    "": "home: login required, redirects to the member's organization",
    "healthz": "probe, public by design",
    "favicon.ico": "a redirect to the static icon",
    "readyz": "probe, public by design",
    "metrics": "Prometheus: token or allowed networks (tests/config/test_metrics.py)",
    "status/": "staff only (tests/config/test_status_page.py)",
    "feeds/": "staff only, deployment-wide feed states (tests/feeds/test_feeds_page.py)",
    "accounts/login/": "public",
    "accounts/logout/": "POST only",
    "invitations/<str:token>/": "the secret token is the capability (tests/orgs)",
    "invitations/<str:token>/signup/": "the secret token is the capability (tests/orgs)",
    "api/v1/": "public API index: links to the description and the resources, no data (tests/api/test_docs.py)",
    "api/v1/schema/": "public API description",
    "api/v1/schema/swagger/": "public API description",
    "api/v1/schema/redoc/": "public API description",
}


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


ROUTES = [r for r in _walk(get_resolver().url_patterns) if not r.startswith("admin/")]
CONSOLE = sorted(r for r in ROUTES if r.startswith("o/<slug:slug>/"))
# DRF's router also answers with a format suffix (``.json``); the plain route is the one to walk.
API = sorted(r for r in ROUTES if r.startswith("api/v1/^") and "(?P<format>" not in r and r != "api/v1/^.*$")
OTHER = sorted(r for r in ROUTES if r not in CONSOLE and r not in API and r != "api/v1/^.*$"
               and "(?P<format>" not in r and r != "api/v1/organization/")


def test_every_route_is_walked_or_classified():
    assert [r for r in OTHER if r not in TOP_LEVEL] == []


@pytest.fixture
def objects(world):
    """One object of each kind in acme (the victim), keyed by the URL keyword that names it."""
    node = NodeFactory(org=world.org)
    session = ScanSessionFactory(org=world.org)
    ScanJobFactory(session=session, node=node)
    endpoint = WebhookEndpoint.objects.create(org=world.org, url="http://127.0.0.1:9/hook", secret="s",
                                              events=["session.finished"])
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event_type="session.finished",
                                              event_id="00000000-0000-0000-0000-000000000001",
                                              status=WebhookDelivery.Status.FAILED)
    token, _ = api_token_create(org=world.org, name="victim", access=ApiToken.Access.READ)
    return {
        "node_id": node.pk,
        "session_id": session.pk,
        "finding_id": FindingFactory(org=world.org, node=node).pk,
        "intervention_id": Intervention.objects.create(org=world.org, kind=Intervention.Kind.STAGE_STUCK,
                                                       subject="matrix", title="t").pk,
        "report_id": Report.objects.create(org=world.org, kind=Report.Kind.ORGANIZATION).pk,
        "member_id": Membership.objects.get(org=world.org, user=world.analyst).pk,
        "invitation_id": Invitation.objects.create(org=world.org, email="x@example.test", token_hash="h" * 64,
                                                   expires_at=timezone.now() + timezone.timedelta(days=1)).pk,
        "token_id": token.pk,
        "endpoint_id": endpoint.pk,
        "delivery_id": delivery.pk,
        "import_id": ImportRequest.objects.create(org=world.org, format="nmap", filename="x.xml").pk,
        "zone_id": Zone.objects.create(org=world.org, name="branch", networks=["127.0.0.0/24"]).pk,
        # A shared view (every member of acme sees it); exports name their format.
        "view_id": SavedView.objects.create(org=world.org, name="v", query="", owner=world.owner, shared=True).pk,
        "kind": "csv",
    }


def _console_url(route: str, slug: str, objects: dict) -> str:
    def fill(match):
        name = match.group(2)
        if name == "slug":
            return slug
        assert name in objects and objects[name] is not None, f"no sample object for <{name}> in {route}: add one"
        return str(objects[name])

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", fill, route)


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("route", CONSOLE)
def test_console_route_keeps_each_caller_in_their_place(route, world, objects):
    url = _console_url(route, "acme", objects)
    # <kind> names an export's format, not an object of the organization.
    has_objects = bool(re.search(r"<(?:\w+:)?(?!slug>|kind>)\w+>", route))

    anonymous = Client()
    for method in ("get", "post"):
        response = getattr(anonymous, method)(url)
        assert _is_login_redirect(response) or response.status_code == 405, (method, url, response.status_code)

    outsider = Client()
    outsider.force_login(world.outsider)
    for method in ("get", "post"):
        response = getattr(outsider, method)(url)
        assert response.status_code in (404, 405), (method, url, response.status_code)
        if has_objects:  # acme's object through globex's own slug
            theirs = _console_url(route, "globex", objects)
            response = getattr(outsider, method)(theirs)
            assert response.status_code in (404, 405), (method, theirs, response.status_code)

    viewer = Client()
    viewer.force_login(world.viewer)
    get = viewer.get(url)
    assert get.status_code in (200, 302, 403, 405, 404 if "download" in route else 200), (url, get.status_code)
    post = viewer.post(url)
    if post.status_code != 405:
        read_only_posts = ("/validate/", "/schedule-preview/")
        # A member's own preference, not the organization's data: every role sets it for themselves only.
        own_preference_posts = ("/settings/notifications/digest/",)
        assert post.status_code == 403 or any(url.endswith(p) for p in (*read_only_posts, *own_preference_posts)), (
            url, post.status_code)

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.owner)
    response = strict.post(url)
    assert response.status_code in (403, 405), (url, response.status_code)


API_OBJECTS = {"nodes": "node_id", "sessions": "session_id", "findings": "finding_id", "imports": "import_id",
               "interventions": "intervention_id", "webhooks": "endpoint_id", "reports": "report_id",
               "zones": "zone_id", "saved-views": "view_id"}


def _api_url(route: str, objects: dict) -> str:
    path = route[len("api/v1/^"):].rstrip("$")
    resource = path.split("/", 1)[0]

    def fill(match):
        name = match.group(1)
        key = API_OBJECTS.get(resource) if name == "pk" else name
        assert key in objects and objects[key] is not None, f"no sample object for {name} in {route}: add one"
        return str(objects[key])

    return "/api/v1/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", fill, path)


@pytest.fixture
def token_keys(world):
    keys = {}
    _, keys["read"] = api_token_create(org=world.org, name="r", access=ApiToken.Access.READ)
    revoked, keys["revoked"] = api_token_create(org=world.org, name="gone", access=ApiToken.Access.READ_WRITE)
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    _, keys["other"] = api_token_create(org=world.other_org, name="globex", access=ApiToken.Access.READ_WRITE)
    return keys


def _api(key=None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    settings.WATCHPOST_API_THROTTLE_RATE = "off"


@pytest.mark.parametrize("route", API + ["api/v1/organization/"])
def test_api_route_keeps_each_caller_in_their_place(route, world, objects, token_keys):
    url = "/" + route if route == "api/v1/organization/" else _api_url(route, objects)
    has_object = bool(re.search(r"\(\?P<(?!kind>)", route))  # an export's kind is a format, not an object
    for method in ("get", "post", "patch", "delete"):
        assert getattr(_api(), method)(url).status_code in (401, 405), (method, url)
        assert getattr(_api(token_keys["revoked"]), method)(url).status_code in (401, 405), (method, url)
        if has_object:
            response = getattr(_api(token_keys["other"]), method)(url, {}, format="json")
            assert response.status_code in (404, 405), (method, url, response.status_code)
        if method != "get":
            response = getattr(_api(token_keys["read"]), method)(url, {}, format="json")
            assert response.status_code in (403, 405), (method, url, response.status_code)
