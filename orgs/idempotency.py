"""``Idempotency-Key`` for API POSTs that start work (sessions, imports, bulk node creation).

A caller that retries after a timeout must not start a second scan. The first request
with a key inserts an ``IdempotencyKey`` row *and commits it* before doing the work; the
unique constraint on (organization, caller, key) means that of two concurrent identical
requests exactly one inserts it. The other waits for the first to finish and replays its
response (or, if it is still running after ``WAIT_SECONDS``, answers 409 "in progress":
retry later). Same key with a different body (or another endpoint) → 422.

Responses below 500 are kept and replayed; a 5xx or an exception deletes the row, so a
retry with the same key does the work again. Keys are kept ``RETENTION`` (24 h, as
payment APIs do) and reusable afterwards.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from config.api_errors import problem_response
from orgs.models import IdempotencyKey

HEADER = "HTTP_IDEMPOTENCY_KEY"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.05
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = ("Location", "ETag")


def request_fingerprint(request) -> str:
    """SHA-256 of what makes two requests "the same": method, path, fields and file contents.

    Read from the parsed data, not the raw body: a multipart upload is hashed in chunks
    from its temporary file instead of being held in memory twice.
    """
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    data = request.data
    fields: dict[str, object] = {}
    if hasattr(data, "lists"):  # a QueryDict (form or multipart)
        for name, values in sorted(data.lists()):
            fields[name] = [v for v in values if not hasattr(v, "chunks")]
    else:
        fields = {"": data}
    digest.update(json.dumps(fields, sort_keys=True, default=str).encode())
    for name, upload in sorted(getattr(request, "FILES", {}).items()):
        digest.update(f"\nfile {name} {upload.name} {upload.size}\n".encode())
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
    return digest.hexdigest()


def idempotent(request, principal, perform: Callable[[], Response]) -> Response:
    """Run ``perform`` once per (caller, Idempotency-Key); without the header, just run it."""
    key = request.META.get(HEADER, "").strip()
    if not key:
        return perform()
    if len(key) > MAX_KEY_LENGTH:
        return problem_response(status_code=400, code="invalid", detail="Idempotency-Key is longer than 255 characters.",
                                errors={"Idempotency-Key": ["At most 255 characters."]})
    fingerprint = request_fingerprint(request)
    row = _claim(principal=principal, key=key, method=request.method, path=request.path, fingerprint=fingerprint)
    if row is not None and row.pk is not None and row.state == IdempotencyKey.State.DONE:
        return _replay(row, fingerprint, request)
    if row is not None:  # someone else holds it and has not finished
        return _wait_and_replay(row.pk, fingerprint, request)
    # We hold the key: do the work, then keep its response.
    claimed = IdempotencyKey.objects.get(org=principal.org, principal=principal.key, key=key)
    try:
        response = perform()
    except BaseException:
        IdempotencyKey.objects.filter(pk=claimed.pk).delete()
        raise
    if response.status_code >= 500:
        IdempotencyKey.objects.filter(pk=claimed.pk).delete()
        return response
    body = json.loads(JSONRenderer().render(response.data)) if response.data is not None else None
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    IdempotencyKey.objects.filter(pk=claimed.pk).update(
        state=IdempotencyKey.State.DONE, response_status=response.status_code, response_body=body,
        response_headers={**headers, "Content-Type": response.get("Content-Type", "") or ""},
        completed_at=timezone.now())
    return response


def _claim(*, principal, key: str, method: str, path: str, fingerprint: str) -> IdempotencyKey | None:
    """Insert (and commit) the key; None when we now hold it, else the row someone else holds."""
    for _ in range(3):
        existing = IdempotencyKey.objects.filter(org=principal.org, principal=principal.key, key=key).first()
        if existing is not None:
            if existing.created_at < timezone.now() - RETENTION and existing.state == IdempotencyKey.State.DONE:
                # Expired: the key may be used again for new work.
                IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
                continue
            return existing
        try:
            with transaction.atomic():
                IdempotencyKey.objects.create(org=principal.org, principal=principal.key, key=key, method=method,
                                              path=path[:500], request_hash=fingerprint)
            # Keys past their retention go as new ones come (an indexed delete, usually of nothing),
            # so the table holds about a day of keys without a periodic job.
            IdempotencyKey.objects.filter(created_at__lt=timezone.now() - RETENTION,
                                          state=IdempotencyKey.State.DONE).delete()
            return None
        except IntegrityError:
            continue  # a concurrent request inserted it first: read theirs
    return IdempotencyKey.objects.filter(org=principal.org, principal=principal.key, key=key).first()


def _mismatch(row: IdempotencyKey, fingerprint: str) -> Response | None:
    if row.request_hash != fingerprint:
        return problem_response(
            status_code=422, code="idempotency_key_reused",
            detail="This Idempotency-Key was used with a different request (method, path or body); "
                   "use a new key for a new request.")
    return None


def _replay(row: IdempotencyKey, fingerprint: str, request) -> Response:
    mismatch = _mismatch(row, fingerprint)
    if mismatch is not None:
        return mismatch
    headers = {k: v for k, v in (row.response_headers or {}).items() if k != "Content-Type"}
    headers[REPLAYED_HEADER] = "true"
    content_type = (row.response_headers or {}).get("Content-Type") or None
    return Response(row.response_body, status=row.response_status, headers=headers,
                    content_type=content_type if content_type and "problem" in content_type else None)


def _wait_and_replay(pk: int, fingerprint: str, request) -> Response:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        row = IdempotencyKey.objects.filter(pk=pk).first()
        if row is None:
            # The first attempt failed (its row was deleted); the caller may retry with the same key.
            return problem_response(status_code=409, code="idempotency_key_in_progress",
                                    detail="The first request with this Idempotency-Key failed; send it again.")
        mismatch = _mismatch(row, fingerprint)
        if mismatch is not None:
            return mismatch
        if row.state == IdempotencyKey.State.DONE:
            return _replay(row, fingerprint, request)
        if time.monotonic() >= deadline:
            return problem_response(status_code=409, code="idempotency_key_in_progress",
                                    detail="A request with this Idempotency-Key is still being processed; "
                                           "retry in a moment to get its response.",
                                    headers={"Retry-After": "1"})
        time.sleep(POLL_SECONDS)
