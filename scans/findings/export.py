"""The findings of a list's filter as CSV or JSON, streamed: a million rows in the memory of one chunk.

Rows come from a server-side cursor inside one read transaction (so PostgreSQL sends them as the
query walks, without materializing the result first) and leave as bytes one chunk at a time; the
console and the API hand the generator to a ``StreamingHttpResponse``. The columns are
``scans.fields.FINDING_EXPORT``'s, the CSV's cells go through ``config.csv_cells`` (a title that
reads as a formula is written as text), the JSON is an array of objects under the same names.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal

import orjson
from django.db import connection, transaction
from django.http import StreamingHttpResponse
from django.utils import timezone

from config.csv_cells import csv_writer
from scans.fields import FINDING_EXPORT
from scans.models import is_potential
from scans.selectors import FindingFilters, finding_list_for_org

CHUNK = 2000
KINDS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
HEADER = FINDING_EXPORT.names
# Read from the database: every exported field but the computed certainty, plus what it is computed from.
_READ = [f.source for f in FINDING_EXPORT if f.name != "certainty"] + ["match_confidence", "confirmed_at"]
_NAMES = [name for name in HEADER if name != "certainty"]
_JSON_TEXT = {"cve_ids"}  # JSON columns, which the raw cursor returns as their text


def finding_export_rows(*, org, filters: FindingFilters) -> Iterator[list[dict]]:
    """The matching findings in id order, one chunk (a list of dicts of raw values) at a time."""
    queryset = finding_list_for_org(org=org, filters=filters).order_by("id").values_list(*_READ)
    sql, params = queryset.query.sql_with_params()
    threshold = org.potential_threshold
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            chunk = []
            for row in rows:
                values = dict(zip(_NAMES, row))
                values["certainty"] = "potential" if is_potential(row[-2], row[-1], threshold) else "certain"
                chunk.append(values)
            yield chunk


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def finding_export_csv(*, org, filters: FindingFilters) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(HEADER)
    yield buffer.getvalue().encode()
    for chunk in finding_export_rows(org=org, filters=filters):
        buffer.seek(0)
        buffer.truncate()
        for values in chunk:
            cves = values["cve_ids"]
            values["cve_ids"] = " ".join(orjson.loads(cves)) if cves and cves != "[]" else ""
            writer.writerow([_cell(values[name]) for name in HEADER])
        yield buffer.getvalue().encode()


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError


def finding_export_json(*, org, filters: FindingFilters) -> Iterator[bytes]:
    yield b"["
    first = True
    for chunk in finding_export_rows(org=org, filters=filters):
        for values in chunk:
            for name in _JSON_TEXT:
                text = values[name]
                values[name] = orjson.Fragment(text) if text is not None else None
        body = b",".join(orjson.dumps({name: values[name] for name in HEADER}, default=_json_default)
                         for values in chunk)
        yield body if first else b"," + body
        first = False
    yield b"]"


def finding_export(*, org, filters: FindingFilters, kind: str) -> Iterator[bytes]:
    """``kind`` is ``csv`` or ``json`` (``KINDS``)."""
    return finding_export_csv(org=org, filters=filters) if kind == "csv" else finding_export_json(org=org,
                                                                                                 filters=filters)


def export_response(*, org, filters: FindingFilters, kind: str) -> StreamingHttpResponse:
    """The export as a download, streamed (the console's and the API's answer alike)."""
    response = StreamingHttpResponse(finding_export(org=org, filters=filters, kind=kind), content_type=KINDS[kind])
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="findings-{org.slug}-{stamp}.{kind}"'
    return response
