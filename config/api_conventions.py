"""The API's shared conventions: rendering, pagination, versions (ETag), schema helpers.

Each app's ``api.py`` builds on these so every endpoint behaves the same way; see the
README's API section for what a client sees.
"""

from __future__ import annotations

from datetime import timezone as dt_timezone
from typing import TYPE_CHECKING, Any

import django_filters
import orjson
from django import forms
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import pagination, renderers, serializers
from rest_framework.exceptions import NotFound, ValidationError

from config.api_errors import problem_response
from config.bounds import ID_MAX, day_in_range

if TYPE_CHECKING:
    from config.fields import Fields

# --- rendering ------------------------------------------------------------------------------


class FastJSONRenderer(renderers.JSONRenderer):
    """JSON through orjson: rendering is much of a list page's CPU, and orjson does it in native code."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS, default=_default)


def _default(value: Any):
    # Decimals (CVSS scores) and lazy strings: what DRF's encoder handles beyond orjson.
    return str(value)


# --- pagination -----------------------------------------------------------------------------

MAX_PAGE_SIZE = 500


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=N&page_size=M`` (M ≤ 500) with a total count: for lists of bounded size."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class IdCursorPagination(pagination.CursorPagination):
    """``?cursor=...&page_size=M`` ordered by the primary key, newest first.

    The key is unique and indexed, so every page is ``WHERE id < last_seen ORDER BY id DESC
    LIMIT M`` — the same cost on page 1 and on page 10,000, and stable while rows are added
    (no row is skipped or repeated). For findings and jobs, which run to millions.
    """

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "-id"
    invalid_cursor_message = "Not a cursor this list handed out: start again from the first page."

    def decode_cursor(self, request):
        # A cursor is the client's input like any parameter: one it could not have been handed
        # (not base64, or a position that is not an id the database can hold) is a 400, never
        # a query that fails in the database.
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from None
        if cursor is not None and cursor.position is not None:
            try:
                position = int(cursor.position)
            except ValueError:
                position = None
            if position is None or not -ID_MAX <= position <= ID_MAX:
                raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return cursor


class IdAscendingCursorPagination(IdCursorPagination):
    ordering = "id"


# --- versions: ETag / If-Match --------------------------------------------------------------


def etag_for(version: int) -> str:
    return f'"{version}"'


def expected_version(request, body_version: int | None) -> tuple[bool, int | None]:
    """(precondition, the version the caller read): ``If-Match`` when sent (a stale one is a 412),
    else the body's ``version`` (a 409); see :func:`stale_version_response`."""
    precondition, version = if_match_version(request)
    return precondition, version if precondition else body_version


def if_match_version(request) -> tuple[bool, int | None]:
    """(present, version) from ``If-Match``; ``*`` or a list with several tags yields no version."""
    raw = request.META.get("HTTP_IF_MATCH")
    if raw is None:
        return False, None
    raw = raw.strip()
    if raw == "*":
        return True, None
    tag = raw.split(",")[0].strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    try:
        return True, int(tag)
    except ValueError:
        return True, -1  # matches no version: a 412


def stale_version_response(*, precondition: bool, current: dict[str, Any], version: int, kind: str):
    """412 for a stale If-Match, 409 for a stale ``version`` in the body; both carry the current state."""
    if precondition:
        return problem_response(
            status_code=412, code="precondition_failed",
            detail=f"The {kind} changed since you read it (If-Match does not match version {version}); "
                   "the current state is in 'current'.",
            headers={"ETag": etag_for(version)}, current=current)
    return problem_response(
        status_code=409, code="stale_version",
        detail=f"The {kind} changed since you read it (it is now at version {version}); "
               "the current state is in 'current'.",
        headers={"ETag": etag_for(version)}, current=current)


# --- serializers ----------------------------------------------------------------------------


def validated(serializer_class, data, **kwargs) -> dict[str, Any]:
    """A request body checked by ``serializer_class``: its validated data, or a 400 with the field errors."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# A read-only serializer of a resource whose fields its app declares once (``fields.py``).
# ``resource`` (a config.fields.Fields) names the serializer's fields, which is what
# drf-spectacular describes, and writes each instance (``Fields.represent``: by hand, as DRF's
# field machinery costs more than the database on a page of hundreds). A subclass gives
# ``resource`` and ``Meta.model``, and declares the fields whose type the model does not say.
# (A comment, not a docstring: drf-spectacular would give it to every subclass's schema.)
class ResourceSerializer(serializers.ModelSerializer):
    resource: Fields

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        names = cls.resource.names
        cls.Meta = type("Meta", (cls.Meta,), {"fields": names, "read_only_fields": names})

    def to_representation(self, instance) -> dict[str, Any]:
        return self.resource.represent(instance)


# --- schema ---------------------------------------------------------------------------------


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "orgs.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An organization API token: `Authorization: Bearer wp_...`. "
                               "Read tokens read; read_write tokens also write."}


ERROR_DESCRIPTIONS = {
    400: "Invalid request: field errors under `errors`",
    401: "Missing, invalid, expired or revoked token",
    403: "Read-only token or role, or not allowed to read this",
    404: "No such object in your organization",
    409: "Conflict (stale version, invalid transition, or an Idempotency-Key still in progress)",
    412: "If-Match does not match the current version",
    413: "The request body (or the uploaded file) is larger than allowed; the limit is in `detail` and `max_bytes`",
    422: "The Idempotency-Key was used with a different request",
    429: "Too many requests: wait Retry-After seconds",
}
READ_ERRORS = (400, 401, 403, 404, 429)  # 400: a malformed filter or page size
WRITE_ERRORS = (400, 401, 403, 404, 429)

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key", location=OpenApiParameter.HEADER, required=False, type=str,
    description="A unique key per logical request (e.g. a UUID). Repeating the request with the same key and "
                "body returns the first response instead of starting the work again; the same key with a "
                "different body is a 422. Kept for 24 hours.")
IF_NONE_MATCH_PARAMETER = OpenApiParameter(
    name="If-None-Match", location=OpenApiParameter.HEADER, required=False, type=str,
    description="The ETag of the list you hold; while it is current the answer is 304 with no body.")
IF_MATCH_PARAMETER = OpenApiParameter(
    name="If-Match", location=OpenApiParameter.HEADER, required=False, type=str,
    description='The ETag (version) you read, e.g. "3". A stale one is refused with 412 and the current state.')


_EXAMPLE_DETAILS = {
    400: ("invalid", "One or more fields are invalid."),
    401: ("not_authenticated", "Send 'Authorization: Bearer <token>' (or log in to the console)."),
    403: ("permission_denied", "This token is read-only; a read_write token is needed to write."),
    404: ("not_found", "No such object"),
    409: ("stale_version", "The object changed since you read it (it is now at version 4)."),
    412: ("precondition_failed", "The object changed since you read it (If-Match does not match version 4)."),
    413: ("too_large",
          "The request body is 2,953,303 bytes; the API reads at most 2,621,440 bytes of JSON per request."),
    422: ("idempotency_key_reused", "This Idempotency-Key was used with a different request."),
    429: ("throttled", "Request was throttled. Expected available in 12 seconds."),
}


def _problem_example(code: int) -> OpenApiExample:
    from config.api_errors import problem_body

    slug, detail = _EXAMPLE_DETAILS[code]
    body = problem_body(status_code=code, code=slug, detail=detail)
    if code == 400:
        body["errors"] = {"address": ["This field is required."], "tags.1": ["This field may not be blank."]}
        body["detail"] = "One or more fields are invalid."
    if code == 413:
        body["max_bytes"] = 2_621_440
    return OpenApiExample(f"{code} {slug}", value=body, status_codes=[str(code)], response_only=True)


def api_operation(*, summary: str, description: str = "", request=None, responses=None, errors=READ_ERRORS,
                  examples=(), parameters=(), **kwargs):
    """``extend_schema`` with this API's habits: a summary, examples and the problem responses.

    ``responses`` names success responses that differ from drf-spectacular's default (a 202,
    a 204, another serializer); ``errors`` the problem statuses the operation can answer,
    documented by ``config.api_schema.WatchpostAutoSchema`` as application/problem+json.
    """
    schema_kwargs = dict(summary=summary, description=description or None, request=request,
                         examples=list(examples), parameters=list(parameters), **kwargs)
    if responses:
        schema_kwargs["responses"] = responses
    decorate = extend_schema(**schema_kwargs)

    def wrapper(func):
        func = decorate(func)
        func._api_errors = tuple(errors)
        return func

    return wrapper


def idempotent_operation(*, errors=(400, 401, 403, 429), parameters=(), **kwargs):
    """``api_operation`` of a POST that starts work and takes an ``Idempotency-Key`` (``orgs.idempotency``):
    the header, and the 409 (the key's first request still running) and 422 (the key sent with another
    request) it may answer besides ``errors``."""
    return api_operation(errors=(*errors, 409, 422), parameters=[IDEMPOTENCY_PARAMETER, *parameters], **kwargs)


def example(name: str, value: Any, *, request: bool = False, status: int | None = None,
            description: str = "") -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=request, response_only=not request,
                          status_codes=[str(status)] if status else None, description=description or None)


def page_example(name: str, *items: Any) -> OpenApiExample:
    """A page of a numbered list (``PageNumberPagination``): the envelope around ``items``."""
    return example(name, {"count": len(items), "next": None, "previous": None, "results": list(items)})


def list_operation(**operation):
    """A viewset's class decorator: ``api_operation`` for the ``list`` it inherits from ListModelMixin,
    so no ``list`` is written only to call ``super()`` and carry the documentation."""
    return extend_schema_view(list=api_operation(**operation))



# --- filters --------------------------------------------------------------------------------


class FilterSet(django_filters.FilterSet):
    """django-filter's FilterSet with its form class built once per FilterSet class.

    django-filter builds a new form class on every request (a form field per filter, from
    deep copies of the filters) — a millisecond of CPU per list call that never changes:
    the API's filters are declared on the class and nothing sets them per request.
    """

    def get_form_class(self):
        cls = type(self)
        form_class = cls.__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            cls._form_class = form_class
        return form_class


class IdFilter(django_filters.NumberFilter):
    """An object id in a query string: a whole number the database can hold, else a 400."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 instant, compared in UTC.

    PostgreSQL refuses offsets beyond ±15:59 and years past 9999; such a value, or one that
    leaves the calendar once moved to UTC, is a 400 rather than a database error.
    """

    def filter(self, qs, value):
        if value is not None:
            try:
                value = value.astimezone(dt_timezone.utc)
            except OverflowError:
                raise ValidationError({self.field_name: ["Out of the supported range of dates."]}) from None
            if not 1 <= value.year <= 9998:
                raise ValidationError({self.field_name: ["Out of the supported range of dates."]})
        return super().filter(qs, value)


class DayFilter(django_filters.DateFilter):
    """A calendar day (YYYY-MM-DD) within years 1-9998, so day arithmetic never overflows."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra.setdefault("validators", []).append(day_in_range)


# --- timestamps -----------------------------------------------------------------------------

# One spelling of an instant everywhere the API writes one by hand (and in the SQL that
# builds list pages as JSON): UTC, microseconds always, "Z".
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
SQL_ISO_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def iso(value) -> str | None:
    return value.astimezone(dt_timezone.utc).strftime(ISO_FORMAT) if value is not None else None


def sql_iso(column: str) -> str:
    """SQL rendering ``column`` (timestamptz) exactly as :func:`iso` does."""
    return f"to_char({column} AT TIME ZONE 'UTC', '{SQL_ISO_FORMAT}')"
