"""The request id: read from ``X-Request-ID`` or made, returned, bound to every log line.

The same id travels into Celery tasks as a task header (see ``config.celery``), so a
console click, the tasks it causes and their log lines share one correlation id.
"""

from __future__ import annotations

import re
import uuid

import structlog

HEADER = "X-Request-ID"
# Accept what proxies commonly send; refuse anything that could forge log lines.
VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

logger = structlog.get_logger("watchpost.request")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return structlog.contextvars.get_contextvars().get("request_id", "")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(HEADER, "")
        request_id = incoming if VALID_ID.match(incoming) else new_request_id()
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            logger.info("request", method=request.method, path=request.path, status=response.status_code)
            return response
        finally:
            structlog.contextvars.clear_contextvars()
