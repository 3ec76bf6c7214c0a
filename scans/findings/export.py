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

import orjson
from django.db import connection, transaction
from django.db.models import Case, CharField, DecimalField, F, FloatField, Func, Value, When
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from django.utils import timezone

from config.api_conventions import iso, sql_iso
from config.csv_cells import csv_writer
from scans.fields import FINDING_EXPORT
from scans.models import Finding, potential_q
from scans.selectors import FindingFilters, finding_list_for_org

CHUNK = 2000
KINDS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
HEADER = FINDING_EXPORT.names
CVE_AT = HEADER.index("cve_ids")


def _expression(field, *, threshold: float, cves_as_text: bool):
    """One exported field as PostgreSQL writes it: times as the API's ISO text, CVSS as a number, certainty by
    the one rule (``potential_q``), CVE ids as JSON (or, for CSV, space-separated); the rest as stored."""
    if field.name == "certainty":
        return Case(When(potential_q(threshold), then=Value("potential")), default=Value("certain"),
                    output_field=CharField())
    if field.name == "cve_ids" and cves_as_text:
        return Func(F("cve_ids"), output_field=CharField(),
                    template="array_to_string(ARRAY(SELECT jsonb_array_elements_text(%(expressions)s)), ' ')")
    if field.python is iso:
        return Func(F(field.source), template=sql_iso("%(expressions)s"), output_field=CharField())
    if "__" not in field.source and isinstance(Finding._meta.get_field(field.source), DecimalField):
        return Cast(field.source, FloatField())
    return F(field.source)


def finding_export_rows(*, org, filters: FindingFilters, cves_as_text: bool) -> Iterator[list[tuple]]:
    """The matching findings in id order as tuples in ``HEADER``'s order, one chunk at a time (raw values: no
    Django converter per value; JSON columns come as their text)."""
    expressions = [_expression(f, threshold=org.potential_threshold, cves_as_text=cves_as_text)
                   for f in FINDING_EXPORT]
    queryset = finding_list_for_org(org=org, filters=filters).order_by("id").values_list(*expressions)
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            yield rows


def finding_export_csv(*, org, filters: FindingFilters) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv_writer(buffer)  # every cell through config.csv_cells
    writer.writerow(HEADER)
    yield buffer.getvalue().encode()
    for rows in finding_export_rows(org=org, filters=filters, cves_as_text=True):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        yield buffer.getvalue().encode()


def finding_export_json(*, org, filters: FindingFilters) -> Iterator[bytes]:
    yield b"["
    first = True
    for rows in finding_export_rows(org=org, filters=filters, cves_as_text=False):
        objects = []
        for row in rows:
            values = dict(zip(HEADER, row))
            cves = row[CVE_AT]
            values["cve_ids"] = orjson.Fragment(cves) if cves is not None else None
            objects.append(orjson.dumps(values))
        body = b",".join(objects)
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
