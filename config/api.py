"""The API's one router and its URLs, mounted at ``/api/v1/`` (config/urls.py).

Each app's ``api.py`` lists its viewsets in ``ROUTES`` as (prefix, viewset, basename);
they are registered here, explicitly, so every endpoint can be found from this file.
The schema is at ``schema/``, with Swagger UI at ``schema/swagger/`` and Redoc at
``schema/redoc/``; ``/api/v1/`` itself answers an index of them and of the resources.
"""

from __future__ import annotations

from csp.decorators import csp_update
from django.conf import settings
from django.http import JsonResponse
from django.urls import path, re_path, reverse
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from config import api_conventions  # noqa: F401  (registers the bearer-token scheme with drf-spectacular)
from config.api_errors import PROBLEM_CONTENT_TYPE, api_not_found, problem_body
from interventions import api as interventions_api
from nodes import api as nodes_api
from orgs import api as orgs_api
from reports import api as reports_api
from reports.webhooks import api as webhook_api
from scans import api as scans_api

DOCS_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]}

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
for prefix, viewset, basename in (
    *nodes_api.ROUTES,
    *scans_api.ROUTES,
    *interventions_api.ROUTES,
    *orgs_api.ROUTES,
    *webhook_api.ROUTES,
    *reports_api.ROUTES,
):
    router.register(prefix, viewset, basename=basename)



def api_index(request):
    """Where to start: the schema, its two documentation pages and every resource, as absolute links.

    Public like the schema: it names endpoints, never an organization's data.
    """
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(problem_body(status_code=405, code="method_not_allowed",
                                         detail=f'Method "{request.method}" not allowed.'),
                            status=405, content_type=PROBLEM_CONTENT_TYPE, headers={"Allow": "GET, HEAD"})
    link = request.build_absolute_uri
    resources = {"organization": link(reverse("api-organization")),
                 **{prefix: link(f"{reverse('api-index')}{prefix}/") for prefix, _, _ in router.registry}}
    return JsonResponse({
        "title": settings.SPECTACULAR_SETTINGS["TITLE"],
        "version": settings.SPECTACULAR_SETTINGS["VERSION"],
        "authentication": "Authorization: Bearer <token> (an organization's API token)",
        "schema": link(reverse("api-schema")),
        "swagger_ui": link(reverse("api-swagger")),
        "redoc": link(reverse("api-redoc")),
        "resources": resources,
    })


urlpatterns = [
    path("", api_index, name="api-index"),
    path("organization/", orgs_api.OrganizationView.as_view(), name="api-organization"),
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[],
                                               throttle_classes=[]), name="api-schema"),
    # The API's documentation pages run third-party UIs: their start-up script is a file (the
    # split view), but both set inline styles, and Redoc searches in a blob: worker. Those two
    # allowances, on these two pages only; scripts stay 'self'.
    path("schema/swagger/", csp_update(DOCS_CSP)(SpectacularSwaggerSplitView.as_view(
        url_name="api-schema", authentication_classes=[], permission_classes=[], throttle_classes=[])),
         name="api-swagger"),
    path("schema/redoc/", csp_update(DOCS_CSP)(SpectacularRedocView.as_view(
        url_name="api-schema", authentication_classes=[], permission_classes=[], throttle_classes=[])),
         name="api-redoc"),
    *router.urls,
    # Anything else under /api/v1/ is a problem-details 404, not the console's HTML page.
    re_path(r"^.*$", api_not_found),
]
