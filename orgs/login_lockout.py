"""The log-in lockout's ``Retry-After``: django-axes answers 429 without saying when to come back.

Sits just outside django-axes' middleware, which turns a locked-out log-in into the lockout page.
A failed attempt during a lockout starts the cool-off again (django-axes' default), so the whole
cool-off is exactly how long the caller must wait from this answer.
"""

from __future__ import annotations

import math

from axes.helpers import get_cool_off


class LockoutRetryAfterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "axes_locked_out", None) and response.status_code == 429 and "Retry-After" not in response:
            cool_off = get_cool_off(request)
            if cool_off:
                response["Retry-After"] = str(math.ceil(cool_off.total_seconds()))
        return response
