"""Headers on every response: no caching of a signed-in person's data, the same CSP on every page.

``NoStoreMiddleware``: a console page seen by a signed-in person and every API response carry
``Cache-Control: no-store``, so a shared computer's browser cache, a back button after log-out or
a proxy keeps no copy of findings, tokens or audit trails. Static files never reach it (WhiteNoise
answers them first, with their own long cache), nor does it touch a response whose view chose
its caching itself; the log-in page, seen signed out, stays cacheable.

``ContentSecurityPolicyMiddleware``: django-csp's middleware, also on the 404 page Django draws
under ``DEBUG`` (django-csp leaves it bare for its inline style): a development server is a
browser's page like any other. It sits near the top of ``MIDDLEWARE`` with the frame header, so
a response made by an outer layer (the 400 of a request naming a host not in ``ALLOWED_HOSTS``)
carries them too.
"""

from __future__ import annotations

from dataclasses import asdict

from csp.constants import HEADER
from csp.middleware import CSPMiddleware
from csp.utils import build_policy
from django.conf import settings

NO_STORE = "no-store"


class NoStoreMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response and _carries_data(request):
            response["Cache-Control"] = NO_STORE
        return response


def _carries_data(request) -> bool:
    if request.path.startswith("/api/"):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def process_response(self, request, response):
        if settings.DEBUG and response.status_code == 404:
            policy = build_policy(**asdict(self.get_policy_parts(request=request, response=response)))
            if policy and HEADER not in response and not getattr(response, "_csp_exempt", False):
                response[HEADER] = policy
            return response
        return super().process_response(request, response)
