"""Report renderers, one module per format, registered explicitly in ``RENDERERS``.

A renderer writes the whole file into ``out`` (a temporary binary file the service owns)
and returns what it learned on the way (``{"pages": n}`` for a PDF). It never touches
storage: the service saves the finished file, so a failing render leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from reports.models import Report
from reports.renderers import csv_export, document, json_export, sarif


class RenderFunction(Protocol):
    def __call__(self, *, report: Report, changes: dict[str, Any], out: BinaryIO) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Renderer:
    render: RenderFunction
    extension: str
    content_type: str


RENDERERS: dict[str, Renderer] = {
    Report.Format.HTML: Renderer(document.render_html, "html", "text/html; charset=utf-8"),
    Report.Format.PDF: Renderer(document.render_pdf, "pdf", "application/pdf"),
    Report.Format.CSV: Renderer(csv_export.render_csv, "csv", "text/csv; charset=utf-8"),
    Report.Format.JSON: Renderer(json_export.render_json, "json", "application/json"),
    Report.Format.SARIF: Renderer(sarif.render_sarif, "sarif", "application/sarif+json"),
}
