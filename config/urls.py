from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config import health, metrics
from orgs import urls as org_urls
from orgs import views as org_views
from reports.notifications import urls as notification_urls
from reports.webhooks import urls as webhook_urls
from scans import operations
from scans import urls as scan_urls

urlpatterns = [
    path("", org_views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    # Browsers (and the admin's pages) ask for /favicon.ico whatever the page links.
    path("favicon.ico", health.favicon),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("status/", operations.status_page, name="status"),
    path("feeds/", operations.feeds_page, name="feeds"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api")),  # the integration API (config/api.py)
    path("invitations/<str:token>/", org_views.invitation_accept, name="invitation_accept"),
    path("invitations/<str:token>/signup/", org_views.invitation_signup, name="invitation_signup"),
    # Console: each app owns its pages under the organization.
    # The organization's namespace ("orgs:...") also holds its dashboard, which the scans app
    # draws from every app below it, and its webhook and notification settings, whose pages the
    # reporting stage owns (reports.webhooks, reports.notifications): same place, same names.
    path("o/<slug:slug>/", include(([*scan_urls.dashboard_urlpatterns, *org_urls.urlpatterns, *webhook_urls.urlpatterns,
                                      *notification_urls.urlpatterns], org_urls.app_name))),
    path("o/<slug:slug>/nodes/", include("nodes.urls")),
    path("o/<slug:slug>/", include("scans.urls")),  # sessions/ and findings/
    path("o/<slug:slug>/interventions/", include("interventions.urls")),
    path("o/<slug:slug>/reports/", include("reports.urls")),
]

admin.site.site_header = "Watchpost administration"
admin.site.site_title = "Watchpost admin"
