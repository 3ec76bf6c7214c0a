"""Throttles for console endpoints that mint secrets or take them: API tokens and invitations.

Built on DRF's SimpleRateThrottle (the same machinery, cache and wait computation the API's
throttles use), so there is one implementation of rate counting in the project. A request
over the rate gets 429 with Retry-After; the limit is per user when logged in, else per
client address (invitation links are opened before logging in).
"""

from __future__ import annotations

import math
from functools import wraps

from django.conf import settings
from django.http import HttpResponse
from rest_framework.throttling import SimpleRateThrottle

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
