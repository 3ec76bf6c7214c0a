"""The API's OpenAPI generator: drf-spectacular's, plus the problem responses of every operation.

Its own module (named by REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]): drf_spectacular.openapi reads
the REST framework settings at import, so the module holding the renderer and pagination
classes those settings name cannot import it.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from config.api_conventions import ERROR_DESCRIPTIONS, READ_ERRORS, WRITE_ERRORS, _problem_example
from config.api_errors import PROBLEM_CONTENT_TYPE, ConflictSerializer, ProblemSerializer


class WatchpostAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus every operation's problem responses (application/problem+json).

    Success responses stay drf-spectacular's (or the operation's own, from ``api_operation``);
    the errors come from ``api_operation(errors=...)``, or a default by method for views that
    do not say: any endpoint can answer 401, 403, 404 and 429, and a write 400.
    """

    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if str(code) in bodies:
                continue
            serializer = ConflictSerializer if code in (409, 412) else ProblemSerializer
            response = OpenApiResponse(response=serializer, description=ERROR_DESCRIPTIONS[code],
                                       examples=[_problem_example(code)])
            bodies[str(code)] = self._get_response_for_code(response, str(code), media_types=[PROBLEM_CONTENT_TYPE],
                                                            direction=direction)
        return bodies

    def _error_codes(self):
        action = getattr(self.view, "action", None) or self.method.lower()
        handler = getattr(self.view, action, None)
        codes = getattr(handler, "_api_errors", None)
        if codes is None:
            codes = READ_ERRORS if self.method in ("GET", "HEAD", "OPTIONS") else WRITE_ERRORS
        if self.method in ("POST", "PUT", "PATCH"):
            codes = {*codes, 413}  # any body can exceed DATA_UPLOAD_MAX_MEMORY_SIZE (config.api_errors)
        return sorted(codes)
