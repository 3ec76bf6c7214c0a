"""One error body for the whole API: RFC 9457 problem details.

Every error the API returns, whoever raised it (DRF, Django's ``Http404`` and
``PermissionDenied``, a service's ``ValidationError``), is an ``application/problem+json``
object::

    {"type": "urn:watchpost:problem:invalid", "title": "Invalid request", "status": 400,
     "detail": "One or more fields are invalid.", "errors": {"address": ["..."]}}

``type`` is a stable URN per kind of problem (clients branch on it, not on the English
``title``); field errors go under ``errors``; a conflict carries the object's ``current``
state. Installed as ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:watchpost:problem:"

TITLES = {
    400: "Invalid request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
}


def problem_body(*, status_code: int, code: str, detail: str, title: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    return {"type": TYPE_PREFIX + code, "title": title or TITLES.get(status_code, "Error"), "status": status_code,
            "detail": detail, **extra}


def problem_response(*, status_code: int, code: str, detail: str, title: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """A problem-details Response for a view to return (conflicts, preconditions, idempotency)."""
    return Response(problem_body(status_code=status_code, code=code, detail=detail, title=title, **extra),
                    status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def field_errors(detail) -> dict[str, list[str]]:
    """DRF's tree of errors as one flat map: a field's path -> its messages.

    Nested and list fields put their errors in objects keyed by position or name
    (``{"tags": {"1": [...]}}``, ``{"nodes": [{}, {"address": [...]}]}``); a client would
    have to walk every shape. Their paths are joined with dots instead (``tags.1``,
    ``nodes.1.address``), so every value is an array of strings, as the schema says. Errors
    about a nested value as a whole (its own ``non_field_errors``) belong to its path; at the
    top they stay under ``non_field_errors``.
    """
    flat: dict[str, list[str]] = {}
    _flatten(detail, "", flat)
    return flat


def _flatten(value, path: str, flat: dict[str, list[str]]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            key = str(key)
            if key == api_settings.NON_FIELD_ERRORS_KEY and path:
                _flatten(child, path, flat)
            else:
                _flatten(child, f"{path}.{key}" if path else key, flat)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            if isinstance(child, (dict, list)):
                _flatten(child, f"{path}.{index}" if path else str(index), flat)
            else:
                flat.setdefault(path or api_settings.NON_FIELD_ERRORS_KEY, []).append(str(child))
    else:
        flat.setdefault(path or api_settings.NON_FIELD_ERRORS_KEY, []).append(str(value))


def _code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return exc.default_code


def body_too_large_response(request) -> Response:
    """413 for a request body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, naming the limit.

    Django refuses such a body when it is read (``RequestDataTooBig``) and would answer its
    own HTML page; an API client gets a problem it can act on.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        sent = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        sent = 0
    size = f"{sent:,} bytes" if sent else "larger than the limit"
    return problem_response(
        status_code=413, code="too_large", max_bytes=limit,
        detail=f"The request body is {size}; the API reads at most {limit:,} bytes of JSON per request.")


def problem_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return body_too_large_response(context["request"])
    if isinstance(exc, DjangoValidationError):
        # A service refused the write: the message is for the caller (scope, triage rules...).
        if hasattr(exc, "error_dict"):
            exc = exceptions.ValidationError({k: [m for e in v for m in e.messages] for k, v in exc.error_dict.items()})
        else:
            exc = exceptions.ValidationError({"non_field_errors": exc.messages})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*(exc.args or ("Not found.",)))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*(exc.args or ()))

    # Imported here: rest_framework.views reads the renderer setting, which names a class in a
    # module (config.api_conventions) that imports this one.
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling logs it
    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.ValidationError):
        errors = field_errors(exc.detail)
        extra["errors"] = errors
        messages = next(iter(errors.values()), [])
        detail = messages[0] if len(errors) == 1 and messages else "One or more fields are invalid."
        code = "invalid"
    else:
        detail = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "; ".join(
            m for messages in field_errors(exc.detail).values() for m in messages)
        code = _code(exc)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after"] = int(exc.wait)
    response.data = problem_body(status_code=response.status_code, code=code, detail=detail, **extra)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def api_not_found(request, *args, **kwargs):
    """Any /api/v1/ path no endpoint answers: a problem, not the console's HTML page."""
    return JsonResponse(problem_body(status_code=404, code="not_found", detail="No such API endpoint."),
                        status=404, content_type=PROBLEM_CONTENT_TYPE)


class ProblemSerializer(serializers.Serializer):
    """The schema of every error body (RFC 9457)."""

    type = serializers.CharField(help_text="A URN naming the kind of problem, e.g. urn:watchpost:problem:not_found")
    title = serializers.CharField(help_text="A short, human-readable summary of the kind of problem")
    status = serializers.IntegerField(help_text="The HTTP status code")
    detail = serializers.CharField(help_text="What went wrong with this request")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                   help_text="Field errors (400 only): a field's path -> its messages. A nested "
                                             "field's path joins its names and list positions with dots "
                                             "(`tags.1`, `nodes.3.address`); errors about the request as a whole "
                                             "are under `non_field_errors`.")
    retry_after = serializers.IntegerField(required=False, help_text="Seconds to wait (429 only)")
    max_bytes = serializers.IntegerField(required=False,
                                         help_text="The largest request body the API reads, in bytes (413 only)")


class ConflictSerializer(ProblemSerializer):
    """A 409/412 on a versioned object: the problem, plus the object as it is now."""

    current = serializers.DictField(help_text="The object's current state (its version included)")

