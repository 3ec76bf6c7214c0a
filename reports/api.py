"""Reports over the API: request one (202, rendered on the ``reports`` queue), poll its status, download it.

The same service as the console (``reports.services.report_request``) and the same access
helper (``reports.access.report_for``): another organization's report is a 404. Requesting
is a write (a read token or a viewer gets 403); any member or token reads and downloads.
"""

from __future__ import annotations

import django_filters
from django.http import FileResponse
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from config.api_conventions import (
    FilterSet,
    PageNumberPagination,
    api_operation,
    example,
    idempotent_operation,
    list_operation,
    page_example,
    validated,
)
from config.api_errors import problem_response
from nodes.models import Node
from orgs.idempotency import idempotent
from orgs.permissions import organization_rows, principal_for
from reports import services
from reports.access import report_for
from reports.models import Report
from scans.models import ScanSession


class ReportSerializer(serializers.ModelSerializer):
    changes = serializers.SerializerMethodField(help_text="Counts since the previous comparable report; null for the first")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = ["id", "kind", "format", "status", "node", "session", "trigger", "file_name", "size", "content_type",
                  "pages", "changes", "error", "period_start", "period_end", "created_at", "started_at", "finished_at",
                  "download_url"]
        read_only_fields = fields

    def get_changes(self, report) -> dict | None:
        changes = report.changes or {}
        if not changes.get("previous"):
            return None
        return {"previous": changes["previous"]["id"], **changes.get("counts", {})}

    def get_download_url(self, report) -> str | None:
        return f"/api/v1/reports/{report.pk}/download/" if report.status == Report.Status.READY else None


class ReportCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Report.Kind.choices, default=Report.Kind.ORGANIZATION)
    format = serializers.ChoiceField(choices=Report.Format.choices, default=Report.Format.PDF)
    node = serializers.IntegerField(required=False, min_value=1, help_text="For a node report")
    session = serializers.IntegerField(required=False, min_value=1, help_text="For a session report")


class ReportFilter(FilterSet):
    kind = django_filters.ChoiceFilter(choices=Report.Kind.choices)
    format = django_filters.ChoiceFilter(choices=Report.Format.choices)
    status = django_filters.ChoiceFilter(choices=Report.Status.choices)

    class Meta:
        model = Report
        fields = ["kind", "format", "status"]


REPORT_EXAMPLE = {
    "id": 7, "kind": "organization", "format": "pdf", "status": "ready", "node": None, "session": None,
    "trigger": "api", "file_name": "watchpost-acme-organization-20261130-2140.pdf", "size": 145310,
    "content_type": "application/pdf", "pages": 12,
    "changes": {"previous": 5, "new": 14, "fixed": 3, "reopened": 1, "risk_accepted": 0, "severity_changed": 2},
    "error": "", "period_start": "2026-11-23T06:00:04Z", "period_end": "2026-11-30T21:40:02Z",
    "created_at": "2026-11-30T21:40:00Z", "started_at": "2026-11-30T21:40:01Z", "finished_at": "2026-11-30T21:40:09Z",
    "download_url": "/api/v1/reports/7/download/",
}


@list_operation(summary="List reports", responses={200: ReportSerializer(many=True)},
                description="Reports of your organization, newest first.",
                examples=[page_example("Reports", REPORT_EXAMPLE)])
class ReportViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ReportSerializer
    filterset_class = ReportFilter
    pagination_class = PageNumberPagination

    def get_queryset(self):
        return organization_rows(self, Report).defer("finding_state", "summary").order_by("-created_at", "-id")

    def get_serializer_class(self):
        return ReportCreateSerializer if self.action == "create" else ReportSerializer

    @api_operation(summary="Get a report", responses={200: ReportSerializer},
                   description="Its status: poll until `status` is `ready` (then `download_url`) or `failed` (`error`).",
                   examples=[example("A ready report", REPORT_EXAMPLE)])
    def retrieve(self, request, pk=None):
        return Response(ReportSerializer(report_for(principal_for(request), pk)).data)

    @idempotent_operation(
        summary="Request a report", request=ReportCreateSerializer, responses={202: ReportSerializer},
        description="An organization report (default), a `node` report or a `session` report, in `pdf` (default), "
                    "`html`, `csv`, `json` (schema: reports/schema/report-v1.schema.json) or `sarif`. Answers 202; "
                    "poll `Location`. Send an `Idempotency-Key` so a retried request renders one report.",
        examples=[example("The organization as PDF", {}, request=True),
                  example("A node as SARIF", {"kind": "node", "node": 42, "format": "sarif"}, request=True),
                  example("Requested", {**REPORT_EXAMPLE, "status": "pending", "file_name": "", "size": None,
                                        "content_type": "", "pages": None, "changes": None, "download_url": None,
                                        "started_at": None, "finished_at": None, "period_start": None,
                                        "period_end": None}, status=202)])
    def create(self, request):
        principal = principal_for(request)

        def perform():
            data = validated(ReportCreateSerializer, request.data)
            node = session = None
            if data["kind"] == Report.Kind.NODE:
                node = Node.objects.filter(org=principal.org, pk=data.get("node") or 0).first()
                if node is None:
                    raise ValidationError({"node": ["A node report needs the id of a node of this organization."]})
            if data["kind"] == Report.Kind.SESSION:
                session = ScanSession.objects.filter(org=principal.org, pk=data.get("session") or 0).first()
                if session is None:
                    raise ValidationError({"session": ["A session report needs the id of a session of this "
                                                       "organization."]})
            report = services.report_request(org=principal.org, kind=data["kind"], format=data["format"], node=node,
                                             session=session, by=principal.actor, token=principal.token,
                                             trigger=Report.Trigger.API)
            return Response(ReportSerializer(report).data, status=status.HTTP_202_ACCEPTED,
                            headers={"Location": f"/api/v1/reports/{report.pk}/"})

        return idempotent(request, principal, perform)

    @api_operation(summary="Download a report", responses={(200, "application/octet-stream"): bytes},
                   errors=(401, 404, 409, 429),
                   description="The file, with its content type and `Content-Disposition` file name. A report that "
                               "is not ready (yet) is a 409 with the report in `current`.")
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def download(self, request, pk=None):
        report = report_for(principal_for(request), pk)
        if report.status != Report.Status.READY or not report.file:
            return problem_response(status_code=409, code="report_not_ready",
                                    detail=f"Report #{report.pk} is {report.status}; download it once it is ready.",
                                    current=ReportSerializer(report).data)
        try:
            handle = report.file.open("rb")
        except FileNotFoundError:
            return problem_response(status_code=409, code="report_file_missing",
                                    detail=f"The file of report #{report.pk} is gone from storage; request a new one.",
                                    current=ReportSerializer(report).data)
        response = FileResponse(handle, as_attachment=True, filename=report.file_name,
                                content_type=report.content_type or "application/octet-stream")
        response["Cache-Control"] = "private, no-store"
        return response


ROUTES = [("reports", ReportViewSet, "report")]
