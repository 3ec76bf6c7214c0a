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

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response

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


def _messages(value) -> Any:
    """DRF's ErrorDetail tree as plain strings (lists of messages per field)."""
    if isinstance(value, dict):
        return {str(k): _messages(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_messages(v) for v in value]
    return str(value)


def _code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return exc.default_code


def problem_exception_handler(exc, context):
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
        errors = _messages(exc.detail)
        if isinstance(errors, list):
            errors = {"non_field_errors": errors}
        extra["errors"] = errors
        first = next((msgs[0] for msgs in errors.values() if isinstance(msgs, list) and msgs
                      and isinstance(msgs[0], str)), None)
        detail = first if len(errors) == 1 and first else "One or more fields are invalid."
        code = "invalid"
    else:
        detail = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else str(_messages(exc.detail))
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
                                   help_text="Field errors: field name -> messages (400 only)")
    retry_after = serializers.IntegerField(required=False, help_text="Seconds to wait (429 only)")


class ConflictSerializer(ProblemSerializer):
    """A 409/412 on a versioned object: the problem, plus the object as it is now."""

    current = serializers.DictField(help_text="The object's current state (its version included)")

