"""Throttles: the API's per-principal rate, and console endpoints that mint secrets or take them.

The API's throttle (``PrincipalRateThrottle``, REST_FRAMEWORK's DEFAULT_THROTTLE_CLASSES) counts
per token or console user. The console's are built on DRF's SimpleRateThrottle (its cache and
wait computation) for API tokens and invitations: the limit is per user when logged in, else
per client address (invitation links are opened before logging in). A request over the rate
gets 429 with Retry-After.
"""

from __future__ import annotations

import math
import time
from functools import wraps

import structlog
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient
from django.http import HttpResponse
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from orgs.models import ApiToken

logger = structlog.get_logger(__name__)

DEFAULT_RATES = {
    "token_create": "10/hour",       # new API secrets per person
    "invitation_create": "30/hour",  # invitation e-mails per person
    "invitation_token": "30/min",    # guesses at an invitation link per address
}


class ConsoleThrottle(SimpleRateThrottle):
    def __init__(self, scope: str):
        self.scope = scope
        self.rate = getattr(settings, "WATCHPOST_CONSOLE_THROTTLE_RATES", {}).get(scope, DEFAULT_RATES[scope])
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        ident = f"user:{user.pk}" if user is not None and user.is_authenticated else \
            f"ip:{request.META.get('REMOTE_ADDR', '')}"
        return f"throttle:console:{self.scope}:{ident}"


def throttle(scope: str, *, methods: tuple[str, ...] = ("POST",)):
    """Limit a console view's ``methods`` to the scope's rate; 429 with Retry-After beyond it."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method in methods and getattr(settings, "WATCHPOST_CONSOLE_THROTTLE", True):
                limiter = ConsoleThrottle(scope)
                if not limiter.allow_request(request, None):
                    wait = max(1, math.ceil(limiter.wait() or 1))
                    response = HttpResponse(f"Too many requests; try again in {wait} seconds.\n", status=429,
                                            content_type="text/plain; charset=utf-8")
                    response["Retry-After"] = str(wait)
                    return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


# --- the API: per token or console user -----------------------------------------------------


def _redis_client():
    """The default cache's Redis client, or None on the embedded default (local memory)."""
    backend = getattr(cache, "_cache", None)
    return backend.get_client(write=True) if isinstance(backend, RedisCacheClient) else None


def _parse_rate(rate: str | None) -> tuple[int, int] | None:
    if not rate or rate.strip().lower() in {"off", "none", "0"}:
        return None
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[0].lower()]
    return int(count), seconds


class PrincipalRateThrottle(BaseThrottle):
    """``WATCHPOST_API_THROTTLE_RATE`` requests per window per token (or console user).

    A fixed window counted with ``incr`` in the Django cache — Redis when REDIS_URL
    is set, so every web worker shares the count; local memory on the embedded default.
    O(1) per request whatever the rate (DRF's SimpleRateThrottle keeps a list of every
    request's timestamp, which grows with the rate). Over the limit → 429 with Retry-After.
    """

    cache_prefix = "api-throttle"

    def allow_request(self, request, view) -> bool:
        rate = _parse_rate(getattr(settings, "WATCHPOST_API_THROTTLE_RATE", None))
        if rate is None:
            return True
        limit, window = rate
        key = self._identity(request)
        now = time.time()
        window_start = int(now // window) * window
        cache_key = f"{self.cache_prefix}:{key}:{window}:{window_start}"
        try:
            count = self._count(cache_key, window)
        except (RedisError, OSError):
            # Fail open: an unreachable cache must not take the API down with it; the outage
            # shows in the logs (and in Redis's own monitoring), not as 500s to every caller.
            logger.warning("api.throttle_unavailable", exc_info=True)
            return True
        self._wait = max(1, int(window_start + window - now + 0.999))
        return count <= limit

    @staticmethod
    def _count(cache_key: str, window: int) -> int:
        client = _redis_client()
        if client is not None:
            # One round trip: start the window's counter if it is new, then count this request.
            key = cache.make_and_validate_key(cache_key)
            pipe = client.pipeline(transaction=False)
            pipe.set(key, 0, ex=window + 1, nx=True)
            pipe.incr(key)
            return pipe.execute()[1]
        try:
            return cache.incr(cache_key)  # the window's counter exists but for its first request
        except ValueError:
            if cache.add(cache_key, 1, timeout=window + 1):
                return 1
            return cache.incr(cache_key)  # another worker started the window meanwhile

    def wait(self) -> float:
        return getattr(self, "_wait", 1)

    @staticmethod
    def _identity(request) -> str:
        if isinstance(request.auth, ApiToken):
            return f"token:{request.auth.pk}"
        if request.user is not None and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{request.META.get('REMOTE_ADDR', '')}"
