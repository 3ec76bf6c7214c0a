"""DRF authentication by ``Authorization: Bearer <token>``, against the stored hash."""

from __future__ import annotations

import functools
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.utils import timezone
from rest_framework import authentication, exceptions

from config import prepared
from orgs.models import ApiToken, Organization, secret_digest

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
        token = token_with_org(secret_digest(key))
        if token is None or not token.is_usable:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        # A token acts for its organization, not for a user.
        return AnonymousUser(), token

    def authenticate_header(self, request):
        return self.keyword


def token_with_org(key_hash: str) -> ApiToken | None:
    """The token with this hash and its organization, in one query.

    Written out rather than ``select_related("org").filter(...).first()``: this runs on every
    API request, and compiling that queryset costs the ORM about as much CPU as the whole of
    a cached list response. The columns come from the models, so a new field is read too.
    """
    sql, token_fields, converters = _token_query()
    row = prepared.fetchone(sql, [key_hash])
    if row is None:
        return None
    values = list(row)
    for i, column_converters in converters:  # the database's values as the ORM converts them
        for column, converter in column_converters:
            values[i] = converter(values[i], column, connection)
    split = len(token_fields)
    token = ApiToken.from_db(connection.alias, [f.attname for f in token_fields], values[:split])
    org_fields = Organization._meta.concrete_fields
    token.org = Organization.from_db(connection.alias, [f.attname for f in org_fields], values[split:])
    return token


@functools.cache
def _token_query():
    """The SQL and each column's converters, worked out once per process."""
    token_fields = list(ApiToken._meta.concrete_fields)
    fields = [*token_fields, *Organization._meta.concrete_fields]
    qn = connection.ops.quote_name
    aliases = {ApiToken: "t", Organization: "o"}
    columns = ", ".join(f"{aliases[f.model]}.{qn(f.column)}" for f in fields)
    sql = (f"SELECT {columns} FROM {qn(ApiToken._meta.db_table)} t "
           f"JOIN {qn(Organization._meta.db_table)} o ON o.{qn(Organization._meta.pk.column)} = t.{qn('org_id')} "
           f"WHERE t.{qn('key_hash')} = %s")
    converters = []
    for i, field in enumerate(fields):
        column = field.get_col(field.model._meta.db_table)
        found = [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]
        if found:
            converters.append((i, [(column, converter) for converter in found]))
    return sql, token_fields, converters
