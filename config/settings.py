"""Watchpost settings, read from the environment (see the table in README.md).

With nothing configured, Watchpost runs on the embedded default: a PostgreSQL server of its
own with its data under ``var/`` (started by the first process that connects) and a Celery
broker on the filesystem, so ``make run`` needs no server installed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.database import database_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("WATCHPOST_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (production refuses a generated key).")
    # A development key that survives restarts, so sessions stay valid across `make run`s.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "dev-secret-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Scanning is bounded twice: the organization's scope and this deployment-wide list.
SCAN_ALLOWED_NETWORKS = env_list("SCAN_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from here, not a CDN
    "django_htmx",
    "django_celery_beat",
    "axes",
    "config",  # its management commands (embedded_db)
    "orgs",
    "nodes",
    "scans",
    "reports",
    "interventions",
]

MIDDLEWARE = [
    "config.metrics.MetricsMiddleware",
    "config.request_id.RequestIdMiddleware",
    # Outside every layer that can answer on its own (a bad Host is a 400 from CommonMiddleware),
    # so every response carries the frame and CSP headers.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.response_headers.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "orgs.proxy_auth.SignedProxyIdentityMiddleware",  # off unless WATCHPOST_PROXY_AUTH_SECRET is set
    "config.response_headers.NoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "orgs.login_lockout.LockoutRetryAfterMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "orgs.context_processors.organizations",
                "interventions.context_processors.open_interventions",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# --- Database -----------------------------------------------------------------------
# PostgreSQL only: DATABASE_URL, else the embedded server under VAR_DIR (config/embedded_db.py).
DATABASE_URL = os.environ.get("DATABASE_URL", "")
DATABASES = {"default": database_settings(DATABASE_URL, var_dir=VAR_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery -----------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
BROKER_DIR = VAR_DIR / "broker"
if not CELERY_BROKER_URL:
    # The embedded default: kombu's filesystem transport, no server needed.
    for sub in ("out", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    # A host name the transport ignores, so kombu does not warn that none was given.
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "data_folder_processed": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "config.cache.PooledRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Progress lives in PostgreSQL rows, not in Celery results: no result backend.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "orchestration"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# --- Auth, i18n, static -------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login protection (django-axes): failures counted per account and per client address in the
# database; past the limit both are locked out until the cool-off ends or an admin unlocks them
# (Django admin → Axes → Access attempts, or `manage.py axes_reset_username NAME`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("WATCHPOST_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("WATCHPOST_LOGIN_COOLOFF_MINUTES", "15")) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# Behind a proxy, the client address comes from X-Forwarded-For only when the operator says so.
AXES_IPWARE_PROXY_COUNT = int(os.environ.get("WATCHPOST_PROXY_COUNT", "0")) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if AXES_IPWARE_PROXY_COUNT else ("REMOTE_ADDR",)
)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# E-mail (invitations): printed to the console in development; SMTP (EMAIL_HOST...) otherwise.
# Tests get Django's locmem backend from the test runner.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "watchpost@localhost")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed files in production (after collectstatic); plain files in development and tests.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production) ----------------------------------------------------------
# Content-Security-Policy (django-csp): only this origin's scripts and styles, no inline script,
# no inline style, no framing. The console is built for it (behaviour hangs on data- attributes
# in static/js/console.js; htmx's injected indicator style is turned off in base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading binds every subdomain of the deployment's domain to HTTPS for months and is
        # hard to undo; it is the operator's call (SECURE_HSTS_PRELOAD=1), so the check is silenced.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # /healthz and /readyz are probed over plain HTTP by load balancers.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# X-Forwarded-Proto is trusted only when a proxy in front sets it (and strips it from clients):
# otherwise any client could claim HTTPS. Off by default.
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# /metrics (Prometheus): a bearer token when set, else only these client networks.
WATCHPOST_METRICS_TOKEN = os.environ.get("WATCHPOST_METRICS_TOKEN", "")
WATCHPOST_METRICS_ALLOWED_NETWORKS = env_list("WATCHPOST_METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")

# --- REST framework -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orgs.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # A token or a console user, scoped to one organization; writes need a writing role (orgs.permissions).
    "DEFAULT_PERMISSION_CLASSES": ["orgs.permissions.OrganizationMember"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.api_conventions.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "config.api_schema.WatchpostAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["config.api_conventions.FastJSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["orgs.throttling.PrincipalRateThrottle"],
    # Every error is an RFC 9457 problem (config.api_errors).
    "EXCEPTION_HANDLER": "config.api_errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# The largest request body read into memory (a JSON body, a form; uploaded files are not counted):
# Django's own default, named here because the API documents it and answers 413 over it. It holds
# the largest list the console's bulk add takes (10,000 rows, 1 MB of text) sent as JSON.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # 2.5 MiB
# Per token (or console user), counted in the cache (Redis when REDIS_URL is set); "off" disables.
WATCHPOST_API_THROTTLE_RATE = os.environ.get("WATCHPOST_API_THROTTLE_RATE", "1200/min")
SPECTACULAR_SETTINGS = {
    "TITLE": "Watchpost API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "Organization-scoped API. Authenticate with `Authorization: Bearer <token>` (a read or read_write token "
        "of one organization). Console users calling with their session name the organization with the "
        "`X-Watchpost-Org: <slug>` header. Errors are RFC 9457 problem details (`application/problem+json`)."
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status", "state" or "kind": each set of choices gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "scans.models.ScanSession.Status",
        "JobStatusEnum": "scans.models.ScanJob.Status",
        "FindingStatusEnum": "scans.models.Finding.Status",
        "ImportStatusEnum": "scans.models.ImportRequest.Status",
        "InterventionKindEnum": "interventions.models.Intervention.Kind",
        "InterventionStateEnum": "interventions.models.Intervention.State",
        "NodeStateEnum": "nodes.models.Node.State",
        "ReportKindEnum": "reports.models.Report.Kind",
        "ReportFormatEnum": "reports.models.Report.Format",
        "ChannelKindEnum": "reports.models.WebhookEndpoint.Kind",
    },
}

# --- Findings and scoring -----------------------------------------------------------
WATCHPOST_SCORING_POLICY = os.environ.get("WATCHPOST_SCORING_POLICY", "default")  # a name in scans.findings.scoring.SCORING_POLICIES
WATCHPOST_PRIORITY_POLICY = os.environ.get("WATCHPOST_PRIORITY_POLICY", "default")  # a name in scans.findings.priority.PRIORITY_POLICIES
WATCHPOST_IMPORT_MAX_BYTES = int(os.environ.get("WATCHPOST_IMPORT_MAX_BYTES", str(512 * 1024 * 1024)))

# --- Exploitation feeds: CISA KEV and FIRST EPSS (scans/cve/feed_sync.py) ------------
WATCHPOST_KEV_URL = os.environ.get(
    "WATCHPOST_KEV_URL", "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json")
WATCHPOST_EPSS_URL = os.environ.get(
    "WATCHPOST_EPSS_URL", "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz")
# Largest feed a sync downloads, and largest a file decompresses to (a gzip bomb is refused as it inflates).
WATCHPOST_FEED_MAX_BYTES = int(os.environ.get("WATCHPOST_FEED_MAX_BYTES", str(256 * 1024 * 1024)))
WATCHPOST_FEED_TIMEOUT_SECONDS = float(os.environ.get("WATCHPOST_FEED_TIMEOUT_SECONDS", "60"))
# 429 and 5xx answers are retried this many times, with exponential backoff and jitter from this base.
WATCHPOST_FEED_RETRIES = int(os.environ.get("WATCHPOST_FEED_RETRIES", "4"))
WATCHPOST_FEED_BACKOFF_SECONDS = float(os.environ.get("WATCHPOST_FEED_BACKOFF_SECONDS", "5"))
# A feed without a success for this long opens a feed_stale intervention in every organization.
WATCHPOST_FEED_STALE_DAYS = float(os.environ.get("WATCHPOST_FEED_STALE_DAYS", "3"))

# --- Vulnerability feeds (scans/cve/nvd_sync.py) -------------------------------------
WATCHPOST_NVD_API_URL = os.environ.get("WATCHPOST_NVD_API_URL", "https://services.nvd.nist.gov/rest/json/cves/2.0")
# Sent as the apiKey header: NVD's limit goes from 5 to 50 requests per rolling 30 s.
NVD_API_KEY = os.environ.get("NVD_API_KEY", "")
# A mirror you run yourself (the benchmark's loopback one) has no NVD rate limit: this lifts ours.
# Never set it for NVD itself.
WATCHPOST_NVD_MIRROR_UNLIMITED = env_bool("WATCHPOST_NVD_MIRROR_UNLIMITED", False)
# One API answer larger than this is refused (a page of 2,000 records is tens of megabytes).
WATCHPOST_NVD_MAX_PAGE_BYTES = int(os.environ.get("WATCHPOST_NVD_MAX_PAGE_BYTES", str(256 * 1024 * 1024)))
WATCHPOST_NVD_TIMEOUT_SECONDS = float(os.environ.get("WATCHPOST_NVD_TIMEOUT_SECONDS", "120"))
WATCHPOST_NVD_MAX_ATTEMPTS = int(os.environ.get("WATCHPOST_NVD_MAX_ATTEMPTS", "6"))

# --- Logging: structured JSON lines, each carrying the request id --------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")  # json | console
from config.logging import build_logging  # noqa: E402  (needs LOG_* above)

LOGGING = build_logging(level=LOG_LEVEL, fmt=LOG_FORMAT)

# --- Reports (reports/) ----------------------------------------------------------------
# Rendered reports go to the default storage (STORAGES["default"]); files are served only through
# the application to members, never from MEDIA_URL, so MEDIA_ROOT must not be web-served.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
WATCHPOST_REPORT_MAX_BYTES = int(os.environ.get("WATCHPOST_REPORT_MAX_BYTES", str(2 * 1024**3)))
WATCHPOST_REPORT_EMAIL_ATTACH_MAX_BYTES = int(os.environ.get("WATCHPOST_REPORT_EMAIL_ATTACH_MAX_BYTES", str(10 * 1024**2)))
# Findings a PDF appendix details (0 = all): over it, the worst nodes with their worst findings (at least
# PDF_FINDINGS_PER_NODE each); the CSV and JSON always hold every one (reports/renderers/document.py).
WATCHPOST_REPORT_PDF_MAX_FINDINGS = int(os.environ.get("WATCHPOST_REPORT_PDF_MAX_FINDINGS", "250"))
WATCHPOST_REPORT_PDF_FINDINGS_PER_NODE = int(os.environ.get("WATCHPOST_REPORT_PDF_FINDINGS_PER_NODE", "5"))
# Links in e-mails (scheduled reports): the console's public address.
WATCHPOST_BASE_URL = os.environ.get("WATCHPOST_BASE_URL", "http://localhost:8000")

# --- Signed proxy identity (SSO gateway; README "Signed proxy identity"): off unless the secret is set
WATCHPOST_PROXY_AUTH_SECRET = os.environ.get("WATCHPOST_PROXY_AUTH_SECRET", "")
WATCHPOST_PROXY_AUTH_USER_HEADER = os.environ.get("WATCHPOST_PROXY_AUTH_USER_HEADER", "X-Watchpost-User")
WATCHPOST_PROXY_AUTH_TIMESTAMP_HEADER = os.environ.get("WATCHPOST_PROXY_AUTH_TIMESTAMP_HEADER", "X-Watchpost-Timestamp")
WATCHPOST_PROXY_AUTH_SIGNATURE_HEADER = os.environ.get("WATCHPOST_PROXY_AUTH_SIGNATURE_HEADER", "X-Watchpost-Signature")
WATCHPOST_PROXY_AUTH_MAX_AGE = int(os.environ.get("WATCHPOST_PROXY_AUTH_MAX_AGE", "60"))
WATCHPOST_PROXY_AUTH_SKEW = int(os.environ.get("WATCHPOST_PROXY_AUTH_SKEW", "5"))

# --- Webhooks (README "Webhooks") ---------------------------------------------------
WATCHPOST_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WATCHPOST_WEBHOOK_MAX_ATTEMPTS", "6"))
WATCHPOST_WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("WATCHPOST_WEBHOOK_RETRY_BASE_SECONDS", "10"))
WATCHPOST_WEBHOOK_RETRY_MAX_SECONDS = float(os.environ.get("WATCHPOST_WEBHOOK_RETRY_MAX_SECONDS", "3600"))
WATCHPOST_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WATCHPOST_WEBHOOK_TIMEOUT_SECONDS", "10"))
# Deliveries failed for good in a row before the endpoint pauses (circuit breaker).
WATCHPOST_WEBHOOK_FAILURE_THRESHOLD = int(os.environ.get("WATCHPOST_WEBHOOK_FAILURE_THRESHOLD", "5"))
WATCHPOST_WEBHOOK_FINDINGS_MAX = int(os.environ.get("WATCHPOST_WEBHOOK_FINDINGS_MAX", "500"))
# A CA bundle (PEM) to verify HTTPS receivers with, for an internal CA; empty = the system's CAs.
WATCHPOST_WEBHOOK_CA_FILE = os.environ.get("WATCHPOST_WEBHOOK_CA_FILE", "")
# The daily digest lists a member's open findings that are overdue or due within this many days.
WATCHPOST_DIGEST_DUE_WITHIN_DAYS = float(os.environ.get("WATCHPOST_DIGEST_DUE_WITHIN_DAYS", "7"))
