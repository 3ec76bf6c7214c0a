"""Signed proxy identity: an SSO gateway in front of Watchpost names the user on each request.

Off unless ``WATCHPOST_PROXY_AUTH_SECRET`` is set. The gateway then sends, on every request:

- ``X-Watchpost-User``: the username of an existing, active Watchpost user;
- ``X-Watchpost-Timestamp``: Unix time in seconds, with a fraction (``1732999999.123456``)
  so that two requests of one user in the same second sign differently;
- ``X-Watchpost-Signature``: hex HMAC-SHA256 of ``user + "\\n" + timestamp`` under the secret.

A request that carries none of them goes on as usual (a session login still works). One that
carries any of them must carry a valid, fresh, unused signature, or it is refused with 403 and
an ``AuditEvent`` (``proxy_auth.refused``, with the reason): missing parts ("unsigned"), a wrong
signature, a timestamp over ``WATCHPOST_PROXY_AUTH_MAX_AGE`` seconds old (60) or more than
``WATCHPOST_PROXY_AUTH_SKEW`` seconds (5) in the future, a signature already seen within that
window (remembered in the Django cache, which is Redis in production, so every web process
shares it), or an unknown or inactive user. A valid request is that user for the console and
for the API's session-style authentication; nothing is stored in the session, the gateway
vouches for each request anew.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse

from orgs.access import client_ip
from orgs.audit import audit_record

logger = structlog.get_logger(__name__)

_TIMESTAMP = re.compile(r"^\d{1,12}(\.\d{1,9})?$")
CACHE_PREFIX = "proxy-auth:seen:"


def _meta_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def proxy_signature(*, secret: str, user: str, timestamp: str) -> str:
    """What the gateway sends: hex HMAC-SHA256 of ``user + "\\n" + timestamp``."""
    return hmac.new(secret.encode(), f"{user}\n{timestamp}".encode(), hashlib.sha256).hexdigest()


class ProxyIdentityRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def proxy_identity_check(*, secret: str, user: str, timestamp: str, signature: str, now: float | None = None):
    """The user the headers name, or ``ProxyIdentityRefused`` with the reason."""
    if not (user and timestamp and signature):
        raise ProxyIdentityRefused("unsigned")
    if not _TIMESTAMP.match(timestamp):
        raise ProxyIdentityRefused("malformed timestamp")
    expected = proxy_signature(secret=secret, user=user, timestamp=timestamp)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise ProxyIdentityRefused("bad signature")
    now = time.time() if now is None else now
    max_age = float(getattr(settings, "WATCHPOST_PROXY_AUTH_MAX_AGE", 60))
    skew = float(getattr(settings, "WATCHPOST_PROXY_AUTH_SKEW", 5))
    age = now - float(timestamp)
    if age > max_age:
        raise ProxyIdentityRefused(f"stale (signed {age:.0f} s ago, over {max_age:.0f} s)")
    if age < -skew:
        raise ProxyIdentityRefused(f"from the future ({-age:.0f} s ahead)")
    # Only a signature that passed is remembered, so a flood of bad ones cannot fill the cache.
    if not cache.add(CACHE_PREFIX + expected, 1, timeout=int(max_age + skew) + 1):
        raise ProxyIdentityRefused("replayed")
    found = get_user_model().objects.filter(username=user, is_active=True).first()
    if found is None:
        raise ProxyIdentityRefused("unknown or inactive user")
    return found


class SignedProxyIdentityMiddleware:
    """After AuthenticationMiddleware: a signed gateway identity replaces the session's user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        secret = getattr(settings, "WATCHPOST_PROXY_AUTH_SECRET", "")
        if not secret:
            return self.get_response(request)
        user_header = getattr(settings, "WATCHPOST_PROXY_AUTH_USER_HEADER", "X-Watchpost-User")
        ts_header = getattr(settings, "WATCHPOST_PROXY_AUTH_TIMESTAMP_HEADER", "X-Watchpost-Timestamp")
        sig_header = getattr(settings, "WATCHPOST_PROXY_AUTH_SIGNATURE_HEADER", "X-Watchpost-Signature")
        values = [request.META.get(_meta_key(h), "") for h in (user_header, ts_header, sig_header)]
        if not any(values):
            return self.get_response(request)
        user, timestamp, signature = values
        try:
            request.user = proxy_identity_check(secret=secret, user=user, timestamp=timestamp, signature=signature)
        except ProxyIdentityRefused as refused:
            return self._refuse(request, user=user, reason=refused.reason)
        # Django's auth machinery (and DRF's SessionAuthentication) read the user from here.
        request._cached_user = request.user
        return self.get_response(request)

    @staticmethod
    def _refuse(request, *, user: str, reason: str) -> HttpResponse:
        audit_record(org=None, verb="proxy_auth.refused", ip=client_ip(request),
                     changes={"reason": reason, "user": user[:150], "path": request.path[:300]})
        logger.warning("proxy_auth.refused", reason=reason, user=user[:150], path=request.path)
        detail = f"The gateway's identity headers were refused: {reason}."
        if request.path.startswith("/api/"):
            return JsonResponse({"type": "about:blank", "title": "Forbidden", "status": 403, "detail": detail},
                                status=403, content_type="application/problem+json")
        return HttpResponse(detail, status=403, content_type="text/plain; charset=utf-8")
