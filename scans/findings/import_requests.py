"""Scanner files uploaded through the API: stored, queued, then imported by ``scans.findings.imports``.

``import_request_create`` keeps the upload through Django's storage API and queues its
processing after commit; ``import_request_process`` (the Celery task's body) claims the
request with a conditional UPDATE and runs ``findings_import`` — the same path, checks
and rejection handling as ``manage.py import_findings`` — then records the counts or the
reason the file was refused (a refused file also opens an ``import_rejected``
intervention, as from the command line).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid

import structlog
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from config.celery import REQUEST_ID_HEADER, app
from config.request_id import current_request_id
from orgs.audit import audit_record
from scans.importers.base import DETECT_BYTES, ImportRejected, format_detect, load_all
from scans.findings.imports import findings_import
from scans.models import ImportRequest

logger = structlog.get_logger(__name__)

PROCESS_TASK = "scans.tasks.import_request_process"


def import_formats() -> list[str]:
    return sorted(load_all())


def import_request_create(*, org, upload, fmt: str, node_address: str = "", by=None, token=None,
                          ip: str | None = None) -> ImportRequest:
    """Store ``upload`` and queue its import. The format is checked here (or, left blank, told from the
    file's first bytes); the file's contents on the queue."""
    fmt = fmt or ""
    if not upload.size:
        raise ValidationError({"file": ["The file is empty."]})
    if not fmt:
        fmt = import_format_detect(upload)
    if fmt not in load_all():
        raise ValidationError({"format": [f"Unknown format {fmt!r}; one of: {', '.join(import_formats())}."]})
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    filename = os.path.basename(upload.name or "upload")[:255] or "upload"
    with transaction.atomic():
        request = ImportRequest(
            org=org, format=fmt, node_address=(node_address or "").strip(), filename=filename, size=upload.size or 0,
            sha256=digest.hexdigest(), requested_by=by if getattr(by, "is_authenticated", False) else None,
            requested_by_token=token, correlation_id=current_request_id() or uuid.uuid4().hex,
        )
        request.upload.save(f"{org.pk}-{uuid.uuid4().hex}-{filename}", upload, save=False)
        request.save()
        audit_record(org=org, verb="import.requested", target=request, actor=by, token=token, ip=ip,
                     changes={"format": fmt, "filename": filename, "size": request.size, "node": request.node_address})
        transaction.on_commit(lambda: _enqueue(request))
    return request


def import_format_detect(upload) -> str:
    """The format an upload's first bytes name (``scans.importers.base.format_detect``), or a ValidationError."""
    upload.seek(0)
    head = upload.read(DETECT_BYTES)
    upload.seek(0)
    if b"\x00" in head:
        raise ValidationError({"file": ["This is binary data, not a scanner's report: nmap XML, Nuclei JSONL, "
                                        "Trivy JSON, SSLyze JSON, OpenVAS XML or CSV, or SARIF."]})
    detected = format_detect(head, upload.name or "")
    if detected is None:
        raise ValidationError({"format": ["The file's format could not be told from its start: choose it."]})
    return detected


def _enqueue(request: ImportRequest) -> None:
    app.send_task(PROCESS_TASK, kwargs={"import_request_id": request.pk},
                  headers={REQUEST_ID_HEADER: request.correlation_id})


def import_request_process(*, import_request_id: int) -> ImportRequest | None:
    """Import the stored file once; a second delivery of the task finds it claimed and does nothing."""
    claimed = ImportRequest.objects.filter(pk=import_request_id, status=ImportRequest.Status.QUEUED).update(
        status=ImportRequest.Status.PROCESSING, started_at=timezone.now())
    request = ImportRequest.objects.select_related("org", "requested_by", "requested_by_token").filter(
        pk=import_request_id).first()
    if not claimed or request is None:
        return request
    path, temporary = _local_path(request)
    try:
        report = findings_import(org=request.org, fmt=request.format, path=path,
                                 node_address=request.node_address or None, by=request.requested_by,
                                 token=request.requested_by_token)
    except ImportRejected as rejected:
        # The reason names the file as its sender did, not as storage renamed it.
        _finish(request, status=ImportRequest.Status.REJECTED,
                reason=rejected.message.replace(os.path.basename(path), request.filename))
        return request
    except Exception as exc:  # noqa: BLE001 - recorded on the row the caller polls, then re-raised for the worker log
        _finish(request, status=ImportRequest.Status.FAILED, reason=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if temporary:
            os.unlink(path)
    # The file as the caller named it, not as storage renamed it.
    _finish(request, status=ImportRequest.Status.SUCCEEDED, counts={**report.as_dict(), "filename": request.filename},
            session=report.session)
    # Imported: the findings hold what the file said; the upload is no longer needed.
    request.upload.delete(save=True)
    return request


def _local_path(request: ImportRequest) -> tuple[str, bool]:
    """A filesystem path to the upload: the file itself on local storage, else a temporary copy."""
    try:
        return default_storage.path(request.upload.name), False
    except NotImplementedError:
        handle, path = tempfile.mkstemp(suffix="-" + request.filename)
        with os.fdopen(handle, "wb") as out, request.upload.open("rb") as src:
            shutil.copyfileobj(src, out)
        return path, True


def _finish(request: ImportRequest, *, status: str, reason: str = "", counts=None, session=None) -> None:
    request.status = status
    request.reason = reason
    request.counts = counts or {}
    request.session = session
    request.finished_at = timezone.now()
    request.save(update_fields=["status", "reason", "counts", "session", "finished_at"])
    logger.info("import_request.finished", import_request_id=request.pk, status=status)
