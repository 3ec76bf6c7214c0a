"""DRF authentication by ``Authorization: Bearer <token>``, against the stored hash."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions

from orgs.models import ApiToken

# last_used_at is for humans reading the token list; a minute's precision saves a write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        key = header[1].decode(errors="replace")
        token = ApiToken.objects.select_related("org").filter(key_hash=ApiToken.hash_key(key)).first()
        if token is None or not token.is_usable:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        # A token acts for its organization, not for a user.
        return AnonymousUser(), token

    def authenticate_header(self, request):
        return self.keyword
