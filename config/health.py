"""Liveness and readiness probes."""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

BROKER_TIMEOUT_SECONDS = 2


@require_safe  # GET and HEAD: load balancers probe with either
@never_cache
def healthz(request):
    """The process answers: nothing else is checked, so a database outage doesn't restart web workers."""
    return JsonResponse({"status": "ok"})


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
        # A transport only proves itself by talking: open a channel.
        conn.default_channel


def check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("value written was not read back")
    cache.delete(key)


CHECKS = {"database": check_database, "broker": check_broker, "cache": check_cache}


@require_safe  # GET and HEAD: load balancers probe with either
@never_cache
def readyz(request):
    results, failed = {}, []
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # noqa: BLE001 - any failure means not ready, and we say which
            results[name] = f"failed: {type(error).__name__}: {error}"[:300]
            failed.append(name)
        else:
            results[name] = "ok"
    body = {"status": "ok" if not failed else "unavailable", "checks": results}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


@require_safe
def favicon(request):
    """Browsers (and the admin's pages) ask for /favicon.ico whatever a page links: send them to the icon.

    Resolved per request, not at import: with hashed static files the name is read from the manifest,
    which exists only after collectstatic.
    """
    from django.http import HttpResponsePermanentRedirect
    from django.templatetags.static import static

    return HttpResponsePermanentRedirect(static("favicon.svg"))
