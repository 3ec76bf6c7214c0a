"""Sessions, jobs, findings and imports over the API.

Writes go through the pipeline's and the findings' services: ``session_start`` /
``session_cancel``, ``finding_triage`` (with the caller's version), and
``scans.findings.import_requests`` for uploaded files.
"""

from __future__ import annotations

from urllib.parse import quote

import django_filters
import orjson
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import mixins, parsers, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from config.api_conventions import (
    IF_MATCH_PARAMETER,
    DayFilter,
    FilterSet,
    IdAscendingCursorPagination,
    IdCursorPagination,
    IdFilter,
    WRITE_ERRORS,
    PageNumberPagination,
    ResourceSerializer,
    api_operation,
    etag_for,
    example,
    expected_version,
    idempotent_operation,
    list_operation,
    page_example,
    stale_version_response,
    validated,
)
from config.api_errors import problem_response
from orgs.access import client_ip, pk_or_404
from orgs.concurrency import StaleVersionError
from orgs.idempotency import idempotent
from orgs.models import ApiToken, Membership
from orgs.permissions import organization_rows, principal_for
from scans import selectors
from scans.access import (
    finding_for,
    saved_view_for,
    saved_view_list_for,
    saved_view_owned_by,
    session_for,
    writable_saved_view_for,
)
from scans.fields import FINDING_API, FINDING_API_DETAIL, JOB_API, SESSION
from scans.cve.feed_staleness import feed_statuses
from scans.findings import import_requests
from scans.findings.remediation import (
    finding_assign,
    finding_comment_add,
    finding_ticket_set,
    findings_assign_bulk,
    findings_comment_bulk,
    findings_ticket_bulk,
)
from scans.findings.export import export_response
from scans.findings.saved_views import saved_view_create, saved_view_delete, saved_view_update
from scans.findings.triage import BULK_TRIAGE_LIMIT, finding_confirm, finding_dismiss, finding_triage
from scans.models import (
    CERTAINTIES,
    Finding,
    FindingComment,
    FindingGroup,
    ImportRequest,
    SavedView,
    ScanJob,
    ScanSession,
    Severity,
)
from scans.pipeline.sessions import SessionError, session_cancel, session_start

# --- sessions -------------------------------------------------------------------------------


class StageSerializer(serializers.Serializer):
    stage = serializers.CharField()
    state = serializers.ChoiceField(choices=["pending", "current", "done", "failed", "skipped"])
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)


class SessionCountsSerializer(serializers.Serializer):
    nodes_total = serializers.IntegerField()
    jobs_total = serializers.IntegerField()
    jobs_succeeded = serializers.IntegerField()
    jobs_failed = serializers.IntegerField()
    jobs_cancelled = serializers.IntegerField()
    jobs_pending = serializers.IntegerField()
    findings_new = serializers.IntegerField()
    findings_updated = serializers.IntegerField()
    findings_reopened = serializers.IntegerField()
    findings_fixed = serializers.IntegerField()


class SessionSerializer(ResourceSerializer):
    resource = SESSION
    profile = serializers.CharField(source="profile.slug", allow_null=True)
    stages = StageSerializer(many=True, read_only=True)
    counts = SessionCountsSerializer(read_only=True)
    targets = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ScanSession


class SessionCreateSerializer(serializers.Serializer):
    profile = serializers.CharField(required=False, allow_blank=True, max_length=64,
                                    help_text="Scan profile slug: light, standard, deep or your own; "
                                              "default: the organization's")
    tag = serializers.CharField(required=False, max_length=40, help_text="Scan the enabled nodes carrying this tag")
    nodes = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**31 - 1), required=False,
                                  allow_empty=False, max_length=10_000, help_text="Scan these nodes (ids)")
    outside_window = serializers.BooleanField(
        required=False, default=False,
        help_text="Start now, whatever the scan windows say (owners and admins; audited). Otherwise jobs wait for "
                  "their zone's window: see window_waiting_until and window_paused")

    def validate(self, data):
        if "tag" in data and "nodes" in data:
            raise ValidationError({"non_field_errors": ["Give a tag or a list of nodes, not both."]})
        return data


SESSION_EXAMPLE = {
    "id": 12, "status": "running", "stage": "execution", "trigger": "api", "profile": "standard",
    "targets": ["127.0.10.5"], "cancel_requested": False, "error": "", "correlation_id": "3f2a9c...",
    "window_override": False, "window_waiting_until": None, "window_paused": False,
    "created_at": "2026-11-30T21:00:00Z", "started_at": "2026-11-30T21:00:01Z", "finished_at": None,
    "heartbeat_at": "2026-11-30T21:00:30Z",
    "stages": [{"stage": "discovery", "state": "done", "started_at": "2026-11-30T21:00:01+00:00",
                "finished_at": "2026-11-30T21:00:05+00:00", "seconds": 4.0},
               {"stage": "execution", "state": "current", "started_at": "2026-11-30T21:00:06+00:00",
                "finished_at": None, "seconds": None}],
    "counts": {"nodes_total": 1, "jobs_total": 3, "jobs_succeeded": 1, "jobs_failed": 0, "jobs_cancelled": 0,
               "jobs_pending": 2, "findings_new": 0, "findings_updated": 0, "findings_reopened": 0,
               "findings_fixed": 0},
}


class JobSerializer(ResourceSerializer):
    resource = JOB_API
    node_address = serializers.CharField(source="node.address")

    class Meta:
        model = ScanJob


class SessionFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=ScanSession.Status.choices)
    trigger = django_filters.ChoiceFilter(choices=ScanSession.Trigger.choices)

    class Meta:
        model = ScanSession
        fields = ["status", "trigger"]


@list_operation(summary="List sessions", responses={200: SessionSerializer(many=True)},
                description="Scan sessions of your organization, newest first.",
                examples=[page_example("A page of sessions", SESSION_EXAMPLE)])
class SessionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = SessionSerializer
    filterset_class = SessionFilter
    pagination_class = PageNumberPagination

    def get_queryset(self):
        return organization_rows(self, ScanSession).select_related("profile").order_by("-created_at", "-id")

    @api_operation(summary="Get a session", responses={200: SessionSerializer},
                   description="Status, per-stage progress and counts. Poll it until `status` is one of "
                               "succeeded, partial, failed, cancelled.",
                   examples=[example("A running session", SESSION_EXAMPLE)])
    def retrieve(self, request, pk=None):
        return Response(SessionSerializer(session_for(principal_for(request), pk)).data)

    @idempotent_operation(
        summary="Request a scan", request=SessionCreateSerializer, responses={202: SessionSerializer},
        description="Starts a session over the whole organization (empty body), the enabled nodes with a `tag`, "
                    "or chosen `nodes`. Answers 202 with the session and `Location` to poll. Send an "
                    "`Idempotency-Key` so a retried request never starts a second scan.",
        examples=[example("The whole organization", {}, request=True),
                  example("A tag, deep profile", {"tag": "prod", "profile": "deep"}, request=True),
                  example("Chosen nodes", {"nodes": [42, 43]}, request=True),
                  example("Queued", {**SESSION_EXAMPLE, "status": "queued", "stage": "discovery"}, status=202)])
    def create(self, request):
        principal = principal_for(request)

        def perform():
            data = validated(SessionCreateSerializer, request.data)
            if data["outside_window"] and not principal.can_manage:
                raise PermissionDenied("Only owners and admins may start a session outside the scan window.")
            try:
                targets = selectors.session_targets_for(org=principal.org, tag=data.get("tag"),
                                                        node_ids=data.get("nodes"))
            except DjangoValidationError as exc:
                raise ValidationError({"tag" if "tag" in data else "nodes": exc.messages}) from None
            try:
                session = session_start(org=principal.org, trigger=ScanSession.Trigger.API,
                                        requested_by=principal.actor, requested_by_token=principal.token,
                                        targets=targets, profile=data.get("profile") or None,
                                        outside_window=data["outside_window"], rights=principal)
            except SessionError as exc:
                raise ValidationError({"non_field_errors": [str(exc)]}) from None
            return Response(SessionSerializer(session).data, status=status.HTTP_202_ACCEPTED,
                            headers={"Location": f"/api/v1/sessions/{session.pk}/"})

        return idempotent(request, principal, perform)

    @api_operation(summary="Cancel a session", request=None, responses={202: SessionSerializer},
                   errors=(401, 403, 404, 409, 429),
                   description="Queued jobs are cancelled at once; running ones end on their own, then the session "
                               "finishes as cancelled. Cancelling twice is not an error; a finished session is a 409.",
                   examples=[example("Cancelling", {**SESSION_EXAMPLE, "cancel_requested": True}, status=202)])
    @action(detail=True, methods=["post"], filterset_class=None)
    def cancel(self, request, pk=None):
        principal = principal_for(request)
        session = session_for(principal, pk)
        try:
            session = session_cancel(session=session, by=principal.actor, token=principal.token)
        except SessionError as exc:
            return problem_response(status_code=409, code="session_finished", detail=str(exc))
        return Response(SessionSerializer(session).data, status=status.HTTP_202_ACCEPTED)

    @api_operation(summary="A session's jobs", responses={200: JobSerializer(many=True)},
                   description="One job per (node, scanner), in creation order; cursor-paginated "
                               "(`next` carries the cursor), `page_size` up to 500.",
                   examples=[example("Jobs", {"next": None, "previous": None, "results": [
                       {"id": 1, "node": 42, "node_address": "127.0.10.5", "scanner": "tls", "status": "succeeded",
                        "attempts": 1, "max_attempts": 3, "error": "", "queued_at": "2026-11-30T21:00:05Z",
                        "started_at": "2026-11-30T21:00:06Z", "finished_at": "2026-11-30T21:00:07Z"}]})])
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=IdAscendingCursorPagination,
            serializer_class=JobSerializer)
    def jobs(self, request, pk=None):
        session = session_for(principal_for(request), pk)
        queryset = ScanJob.objects.filter(session=session).select_related("node").only(*JOB_API.sources)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(JobSerializer(page, many=True).data)


# --- findings -------------------------------------------------------------------------------

class FindingSerializer(ResourceSerializer):
    resource = FINDING_API
    node_address = serializers.CharField(source="node.address")
    cvss_score = serializers.FloatField(allow_null=True)
    certainty = serializers.ChoiceField(choices=CERTAINTIES, read_only=True,
                                        help_text="potential: below the organization's threshold, unconfirmed")
    assignee = serializers.IntegerField(allow_null=True, read_only=True,
                                        help_text="The user id of the member who owns the fix, or null")
    ticket_url = serializers.CharField(allow_blank=True, read_only=True, help_text="http(s) link to its ticket")
    ticket_key = serializers.CharField(allow_blank=True, read_only=True, help_text="Its ticket's key, e.g. OPS-1234")
    due_at = serializers.DateTimeField(allow_null=True, read_only=True,
                                       help_text="When the SLA wants it fixed; null unless open (paused by a triage)")

    class Meta:
        model = Finding


class FindingDetailSerializer(FindingSerializer):
    resource = FINDING_API_DETAIL
    sla_breached_at = serializers.DateTimeField(allow_null=True, read_only=True,
                                                help_text="When the SLA sweep found it overdue (announced once)")


VERSION_FIELD_HELP = "The version you read; a stale one is a 409 with the current state"


class FindingAssignSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(allow_null=True, min_value=1, max_value=2**63 - 1,
                                        help_text="A member's user id; null unassigns")
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1, help_text=VERSION_FIELD_HELP)


class FindingTicketSerializer(serializers.Serializer):
    url = serializers.CharField(allow_blank=True, max_length=2000, help_text="http:// or https:// link; empty unlinks")
    key = serializers.CharField(required=False, allow_blank=True, default="", max_length=100,
                                help_text="The ticket's key, e.g. OPS-1234")
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1, help_text=VERSION_FIELD_HELP)


class FindingCommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", allow_null=True, read_only=True)
    body = serializers.CharField(help_text="Plain text, at most 10,000 characters")

    class Meta:
        model = FindingComment
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = ["id", "author", "created_at"]


class FindingCommentCreateSerializer(serializers.Serializer):
    # No max_length here: the service says the limit and the length sent, for the console alike.
    body = serializers.CharField(help_text="Plain text, at most 10,000 characters")


class FindingBulkSerializer(serializers.Serializer):
    """Assign, link a ticket or comment on many findings: the ids given."""

    findings = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                     allow_empty=False, max_length=BULK_TRIAGE_LIMIT)
    action = serializers.ChoiceField(choices=["assign", "ticket", "comment"])
    assignee = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
                                        help_text="assign: a member's user id; null unassigns")
    url = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                help_text="ticket: http(s) link")
    key = serializers.CharField(required=False, allow_blank=True, default="", max_length=100, help_text="ticket: key")
    body = serializers.CharField(required=False, allow_blank=True, default="", help_text="comment: plain text")


class FindingBulkResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="Findings changed (or commented on)")


class FindingTriageSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["false_positive", "risk_accepted", "open"])
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000,
                                   help_text="Why (required unless setting back to open)")
    risk_accepted_until = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                                    help_text="Expiry of an accepted risk (required for it)")
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1,
                                       help_text="The version you read; a stale one is a 409 with the current state")


class FindingConfirmSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000,
                                 help_text="How you confirmed it (kept in the finding's history)")
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1,
                                       help_text="The version you read; a stale one is a 409 with the current state")


class FindingDismissSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1,
                                       help_text="The version you read; a stale one is a 409 with the current state")
    reason = serializers.CharField(max_length=5000, help_text="Why it is a false positive (required)")


class CommaSeparatedChoices(django_filters.BaseInFilter, django_filters.CharFilter):
    """``?severity=critical,high``: one or several values."""


class FindingFilter(FilterSet):
    """The API's query parameters, read by the same selector as the console's list (scans.selectors)."""

    severity = CommaSeparatedChoices(help_text="critical, high, medium, low, info; several: critical,high")
    priority = CommaSeparatedChoices(help_text="P1, P2, P3, P4 (or 1-4); several: P1,P2. Only open findings have one")
    sort = django_filters.ChoiceFilter(
        choices=[("newest", "newest first"), ("priority", "P1 first")], method="filter_none",
        help_text="`priority`: P1 first, newest first within a priority, open findings only (closed ones have no "
                  "priority); default newest first")
    status = CommaSeparatedChoices(help_text="open, fixed, false_positive, risk_accepted; several: comma-separated")
    node = IdFilter(help_text="Node id")
    rule = django_filters.CharFilter(max_length=255, help_text="A rule id, exactly: the findings of one group of "
                                                               "`/findings/groups/` (a CVE id, a scanner's check)")
    cve = django_filters.CharFilter(help_text="A CVE id, e.g. CVE-2024-6387")
    source = django_filters.CharFilter(help_text="Scanner or importer, e.g. tls, nuclei")
    port = django_filters.NumberFilter(min_value=0, max_value=65535)
    first_seen_from = DayFilter(help_text="First seen on or after this day (YYYY-MM-DD)")
    first_seen_to = DayFilter(help_text="First seen on or before this day")
    last_seen_from = DayFilter(help_text="Last seen on or after this day")
    last_seen_to = DayFilter(help_text="Last seen on or before this day")
    assignee = django_filters.CharFilter(help_text="`me` (assigned to you), `none` (unassigned) or a user id")
    overdue = django_filters.BooleanFilter(help_text="true: open findings past their due date")
    certainty = django_filters.ChoiceFilter(
        choices=[("certain", "certain"), ("potential", "potential")],
        help_text="potential: match confidence below the organization's threshold and not confirmed (counted in "
                  "no grade or score); certain: every other finding")

    class Meta:
        model = Finding
        fields = ["severity", "priority", "status", "node", "rule", "cve", "source", "port", "first_seen_from",
                  "first_seen_to", "last_seen_from", "last_seen_to", "certainty", "assignee", "overdue", "sort"]

    def filter_none(self, queryset, name, value):
        return queryset  # read by filter_queryset below and by the paginator

    def filter_queryset(self, queryset):
        filters = self.finding_filters()
        org = principal_for(self.request).org
        findings = selectors.finding_list_for_org(org=org, filters=filters).select_related("node")
        # The cursor reads the priority: findings without one have no place in it.
        if self.form.cleaned_data.get("sort") == "priority":
            findings = findings.filter(priority__isnull=False)
        return findings

    def finding_filters(self) -> selectors.FindingFilters:
        """The validated parameters as the selectors' filter (the list's and the export's)."""
        data = {k: v for k, v in self.form.cleaned_data.items() if v not in (None, "", [])}
        data.pop("sort", "")
        if data.pop("overdue", False):
            data["overdue"] = "1"
        for key in ("severity", "status", "priority"):
            if key in data:
                data[key] = ",".join(data[key])
        for key in ("node", "port"):
            if key in data:
                data[key] = str(int(data[key]))
        for key in ("first_seen_from", "first_seen_to", "last_seen_from", "last_seen_to"):
            if key in data:
                data[key] = data[key].isoformat()
        self._check_choices(data)
        principal = principal_for(self.request)
        if "assignee" in data and not selectors.assignee_value(data["assignee"], principal.user):
            raise ValidationError({"assignee": ["Give me, none or a user id"
                                                + (" (a token is nobody: not me)" if principal.user is None else "")
                                                + "."]})
        return selectors.finding_filters_from(data, user=principal.user)

    @staticmethod
    def _check_choices(data) -> None:
        # The console drops unknown values (a typo in a shared link still opens a list); an API
        # client gets told.
        for key, allowed in (("severity", Severity.values), ("status", Finding.Status.values)):
            bad = [v for v in data.get(key, "").split(",") if v and v not in allowed]
            if bad:
                raise ValidationError({key: [f"{bad[0]!r} is not one of {', '.join(allowed)}."]})
        bad = [v for v in data.get("priority", "").split(",") if v and selectors.priority_value(v) is None]
        if bad:
            raise ValidationError({"priority": [f"{bad[0]!r} is not one of P1, P2, P3, P4."]})


FINDING_EXAMPLE = {
    "id": 9001, "node": 42, "node_address": "127.0.10.5", "source": "tls", "rule_id": "tls-weak-protocol",
    "title": "TLS 1.0 enabled", "severity": "high", "cvss_score": 7.4, "cve_ids": [], "cwe": 327, "port": 443,
    "protocol": "tcp", "location": "127.0.10.5:443", "status": "open", "first_seen": "2026-11-29T03:00:00Z",
    "last_seen": "2026-11-30T03:00:00Z", "version": 1, "triage_reason": "", "risk_accepted_until": None,
    "certainty": "certain",
    "priority": 2,
}


class FindingGroupSerializer(serializers.ModelSerializer):
    findings = serializers.SerializerMethodField(help_text="The group's open findings: the list filtered by rule")

    class Meta:
        model = FindingGroup
        fields = ["rule_id", "title", "source", "cve_ids", "severity", "priority", "open_count", "node_count",
                  "ports", "port_count", "first_seen", "due_at", "findings"]
        read_only_fields = fields

    def get_findings(self, group) -> str:
        return f"/api/v1/findings/?status=open&rule={quote(group.rule_id, safe='')}"


GROUP_EXAMPLE = {
    "rule_id": "CVE-2021-23017", "title": "nginx resolver off-by-one (CVE-2021-23017)", "source": "cve",
    "cve_ids": ["CVE-2021-23017"], "severity": "high", "priority": 2, "open_count": 3, "node_count": 3,
    "ports": [80, 443], "port_count": 2, "first_seen": "2026-11-29T03:00:00Z", "due_at": "2026-12-29T03:00:00Z",
    "findings": "/api/v1/findings/?status=open&rule=CVE-2021-23017",
}


class FindingGroupQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200,
                              help_text="Text in the rule id (a CVE id) or the title")


class FindingViewSetGroups:
    """The "by vulnerability" list and the export, mixed into ``FindingViewSet``."""

    @api_operation(
        summary="Open findings by vulnerability",
        description="Open findings grouped by rule id (CVE fingerprinting writes the CVE id as the rule; a "
                    "scanner's check is one rule; a finding naming several CVEs counts once, in its rule's group): "
                    "affected nodes and ports, worst severity and priority, oldest first seen, earliest due date. "
                    "Most urgent first, then the most findings; page-numbered. `findings` lists a group's findings.",
        parameters=[FindingGroupQuerySerializer], responses={200: FindingGroupSerializer(many=True)},
        examples=[page_example("Groups", GROUP_EXAMPLE)])
    @action(detail=False, methods=["get"], filterset_class=None)
    def groups(self, request):
        query = validated(FindingGroupQuerySerializer, request.query_params)
        groups = selectors.finding_group_list_for_org(org=principal_for(request).org, q=query.get("q", "").strip())
        page = self.paginate_queryset(groups)
        return self.get_paginated_response(FindingGroupSerializer(page, many=True).data)

    @api_operation(
        summary="Export findings (CSV or JSON)", responses={(200, "text/csv"): str, (200, "application/json"): str},
        description="Every finding matching the list's filters (the same parameters; every status unless `status` "
                    "says), in id order, streamed: `export/csv/` or `export/json/` (an array of objects). CSV cells "
                    "that a spreadsheet would read as a formula (starting with =, +, -, @, tab or carriage return) "
                    "are written with a leading quote.",
        examples=[example("JSON", [{
            "id": 9001, "node": 42, "node_address": "127.0.10.5", "node_name": "web-1", "severity": "high",
            "priority": 2, "title": "TLS 1.0 enabled", "status": "open", "source": "tls",
            "rule_id": "tls-weak-protocol", "cve_ids": [], "cwe": 327, "cvss_score": 7.4, "port": 443,
            "protocol": "tcp", "location": "127.0.10.5:443", "first_seen": "2026-11-29T03:00:00Z",
            "last_seen": "2026-11-30T03:00:00Z", "due_at": "2026-12-29T03:00:00Z", "ticket_key": "",
            "ticket_url": "", "triage_reason": "", "risk_accepted_until": None, "certainty": "certain",
            "fingerprint": "3f2a..."}])])
    @action(detail=False, methods=["get"], url_path=r"export/(?P<kind>csv|json)")
    def export(self, request, kind=None):
        filterset = FindingFilter(request.query_params, queryset=Finding.objects.none(), request=request)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return export_response(org=principal_for(request).org, filters=filterset.finding_filters(), kind=kind)


class PriorityCursorPagination(IdCursorPagination):
    """``?sort=priority``: P1 first, newest first within a priority, by cursor."""

    ordering = ("priority", "-id")


def _certainty_action_operation(*, summary: str, serializer, body: dict, description: str):
    """A confirm or dismiss action: a POST on one finding, answered with the whole finding, version-checked."""
    def decorate(view):
        view = action(detail=True, methods=["post"], filterset_class=None)(view)
        return api_operation(summary=summary, request=serializer, responses={200: FindingDetailSerializer},
                             errors=(400, 401, 403, 404, 409, 412, 429), parameters=[IF_MATCH_PARAMETER],
                             description=description,
                             examples=[example(summary.split()[0], body, request=True)])(view)
    return decorate


class FindingViewSet(FindingViewSetGroups, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = FindingSerializer
    filterset_class = FindingFilter
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return organization_rows(self, Finding).select_related("node")

    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            by_priority = self.action == "list" and self.request.query_params.get("sort") == "priority"
            if self.action == "groups":
                self._paginator = PageNumberPagination()
            else:
                self._paginator = PriorityCursorPagination() if by_priority else IdCursorPagination()
        return self._paginator

    @api_operation(
        summary="List findings", responses={200: FindingSerializer(many=True)},
        description="Newest first, cursor-paginated: follow `next` (stable while findings are added, the same "
                    "speed at any depth). `page_size` up to 500. Filters combine.",
        examples=[example("New critical findings", {"next": "http://127.0.0.1:8000/api/v1/findings/?cursor=cD0x",
                                                     "previous": None, "results": [FINDING_EXAMPLE]})])
    def list(self, request, *args, **kwargs):
        # The page's ids by cursor (an index walk), then the page itself.
        org = principal_for(request).org
        # The cursor is made of the columns the page is ordered by.
        ordering = self.paginator.ordering
        keys = {"id", *(field.lstrip("-") for field in ((ordering,) if isinstance(ordering, str) else ordering))}
        ids = [row["id"] for row in self.paginate_queryset(self.filter_queryset(self.get_queryset()).values(*keys))]
        return self.get_paginated_response(orjson.Fragment(selectors.findings_page_json(org=org, ids=ids)))

    @api_operation(summary="Get a finding", responses={200: FindingDetailSerializer},
                   description="The whole finding; the `ETag` header is its version, for `If-Match` on a triage.",
                   examples=[example("A finding", {**FINDING_EXAMPLE, "cvss_vector": "", "description": "...",
                                                   "evidence": {}, "remediation": "Disable TLS 1.0.",
                                                   "references": [], "match_confidence": None, "match_reason": "",
                                                   "priority_reasons": ["CVSS 7.4", "reachable on 443/tcp",
                                                                        "node criticality medium"],
                                                   "fixed_at": None, "reopened_count": 0, "times_seen": 2,
                                                   "triaged_at": None, "confirmed_at": None})])
    def retrieve(self, request, pk=None):
        finding = finding_for(principal_for(request), pk)
        return Response(FindingDetailSerializer(finding).data, headers={"ETag": etag_for(finding.version)})

    @api_operation(
        summary="Triage a finding", request=FindingTriageSerializer, responses={200: FindingDetailSerializer},
        errors=(400, 401, 403, 404, 409, 412, 429), parameters=[IF_MATCH_PARAMETER],
        description="Mark a false positive, accept a risk until a date, or set a triaged finding back to open. "
                    "Send the version you read (`If-Match: \"3\"` or `version` in the body): if the finding "
                    "changed meanwhile the triage is refused (412 for If-Match, 409 for the body's version) with "
                    "the current state, never silently applied.",
        examples=[example("Accept a risk", {"status": "risk_accepted", "reason": "Isolated lab host",
                                            "risk_accepted_until": "2027-01-31T00:00:00Z", "version": 1},
                          request=True),
                  example("False positive", {"status": "false_positive", "reason": "Banner is patched by vendor"},
                          request=True)])
    def partial_update(self, request, pk=None):
        principal = principal_for(request)
        finding = finding_for(principal, pk)
        data = validated(FindingTriageSerializer, request.data)
        precondition, expected = expected_version(request, data.get("version"))
        try:
            finding = finding_triage(finding=finding, status=data["status"], reason=data["reason"],
                                     until=data["risk_accepted_until"], by=principal.actor, token=principal.token,
                                     ip=client_ip(request), expected_version=expected)
        except StaleVersionError:
            current = finding_for(principal, pk)
            return stale_version_response(precondition=precondition, current=FindingDetailSerializer(current).data,
                                          version=current.version, kind="finding")
        finding = finding_for(principal, pk)
        return Response(FindingDetailSerializer(finding).data, headers={"ETag": etag_for(finding.version)})

    def _versioned_change(self, request, pk, serializer, change, refused):
        """A change made from the version read (confirm, dismiss, assign, ticket): the same version checks
        as a triage, the same answer (the whole finding); ``refused`` answers the service's refusal."""
        principal = principal_for(request)
        finding = finding_for(principal, pk)
        data = validated(serializer, request.data)
        precondition, expected = expected_version(request, data.get("version"))
        try:
            change(finding=finding, data=data, principal=principal, expected=expected)
        except StaleVersionError:
            current = finding_for(principal, pk)
            return stale_version_response(precondition=precondition, current=FindingDetailSerializer(current).data,
                                          version=current.version, kind="finding")
        except DjangoValidationError as exc:
            return refused(exc)
        finding = finding_for(principal, pk)
        return Response(FindingDetailSerializer(finding).data, headers={"ETag": etag_for(finding.version)})

    def _certainty_action(self, request, pk, serializer, service, *, text: str):
        """Confirm or dismiss through ``service``, which takes the body's ``text`` field (the note, the reason)
        under the same name; a finding that is not potential is a 409."""
        def change(*, finding, data, principal, expected):
            service(finding=finding, by=principal.actor, token=principal.token, ip=client_ip(request),
                    expected_version=expected, **{text: data[text]})

        return self._versioned_change(request, pk, serializer, change, lambda exc: problem_response(
            status_code=409, code="not_potential", detail=" ".join(exc.messages)))

    def _ownership_change(self, request, pk, serializer, change):
        """Assign or link a ticket; a refusal (not a member, not a web link) is a 400."""
        def refused(exc):
            raise ValidationError({"non_field_errors": exc.messages}) from None

        return self._versioned_change(request, pk, serializer, change, refused)

    @_certainty_action_operation(
        summary="Confirm a potential finding", serializer=FindingConfirmSerializer, body={"version": 3},
        description="A finding whose `certainty` is `potential` (its match confidence is below the organization's "
                    "threshold) counts in no grade, score or top risk until confirmed. Confirming it makes it count. "
                    "Send the version you read (`If-Match` or `version`); a finding that is not potential is a 409.")
    def confirm(self, request, pk=None):
        return self._certainty_action(request, pk, FindingConfirmSerializer, finding_confirm, text="note")

    @_certainty_action_operation(
        summary="Dismiss a potential finding", serializer=FindingDismissSerializer,
        body={"reason": "Ubuntu backported the fix (USN-4601-1)", "version": 3},
        description="Rule a potential finding out: it becomes a false positive with your `reason`. Send the "
                    "version you read; a finding that is not potential is a 409 (triage it instead).")
    def dismiss(self, request, pk=None):
        return self._certainty_action(request, pk, FindingDismissSerializer, finding_dismiss, text="reason")

    # -- ownership: assignee, ticket, comments (scans.findings.remediation) ---------------------


    @api_operation(summary="Assign a finding", request=FindingAssignSerializer, responses={200: FindingDetailSerializer},
                   errors=(400, 401, 403, 404, 409, 412, 429), parameters=[IF_MATCH_PARAMETER],
                   description="Give the finding to a member of the organization (`assignee`: their user id), or "
                               "to nobody (null). Someone outside the organization is a 400. Audited.",
                   examples=[example("Assign", {"assignee": 7, "version": 3}, request=True)])
    @action(detail=True, methods=["post"], filterset_class=None)
    def assign(self, request, pk=None):
        def change(*, finding, data, principal, expected):
            finding_assign(finding=finding, assignee=data["assignee"], by=principal.actor, token=principal.token,
                           ip=client_ip(request), expected_version=expected)

        return self._ownership_change(request, pk, FindingAssignSerializer, change)

    @api_operation(summary="Link a finding to its ticket", request=FindingTicketSerializer,
                   responses={200: FindingDetailSerializer}, errors=(400, 401, 403, 404, 409, 412, 429),
                   parameters=[IF_MATCH_PARAMETER],
                   description="An http(s) `url` (any other scheme, `javascript:` among them, is a 400) and a `key`; "
                               "both empty unlink. Audited.",
                   examples=[example("Link", {"url": "https://tracker.example/OPS-1234", "key": "OPS-1234"},
                                     request=True)])
    @action(detail=True, methods=["post"], filterset_class=None)
    def ticket(self, request, pk=None):
        def change(*, finding, data, principal, expected):
            finding_ticket_set(finding=finding, url=data["url"], key=data["key"], by=principal.actor,
                               token=principal.token, ip=client_ip(request), expected_version=expected)

        return self._ownership_change(request, pk, FindingTicketSerializer, change)

    @api_operation(summary="A finding's comments", responses={200: FindingCommentSerializer(many=True)},
                   description="The whole thread, oldest first.",
                   examples=[example("Thread", [{"id": 1, "author": "alice", "body": "Patch scheduled Friday.",
                                                 "created_at": "2026-12-01T10:00:00Z"}])])
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None,
            serializer_class=FindingCommentSerializer)
    def comments(self, request, pk=None):
        finding = finding_for(principal_for(request), pk)
        return Response(FindingCommentSerializer(selectors.finding_comments(finding=finding), many=True).data)

    @api_operation(summary="Comment on a finding", request=FindingCommentCreateSerializer,
                   responses={201: FindingCommentSerializer}, errors=(400, 401, 403, 404, 429),
                   description="Plain text, at most 10,000 characters (a longer one is a 400 saying its length). "
                               "Audited.",
                   examples=[example("Comment", {"body": "Patch scheduled Friday."}, request=True)])
    @comments.mapping.post
    def comment_add(self, request, pk=None):
        principal = principal_for(request)
        finding = finding_for(principal, pk)
        data = validated(FindingCommentCreateSerializer, request.data)
        try:
            comment = finding_comment_add(finding=finding, body=data["body"], by=principal.actor,
                                          token=principal.token, ip=client_ip(request))
        except DjangoValidationError as exc:
            raise ValidationError({"body": exc.messages}) from None
        return Response(FindingCommentSerializer(comment).data, status=status.HTTP_201_CREATED)

    @api_operation(summary="Assign, link or comment on many findings", request=FindingBulkSerializer,
                   responses={200: FindingBulkResultSerializer}, errors=(400, 401, 403, 429),
                   description="One action on the findings given by id (those of other organizations are left "
                               "out): `assign` (`assignee`), `ticket` (`url`, `key`) or `comment` (`body`). One "
                               "audit event per finding changed; all or nothing.",
                   examples=[example("Assign", {"findings": [9001, 9002], "action": "assign", "assignee": 7},
                                     request=True), example("Done", {"changed": 2})])
    @action(detail=False, methods=["post"], filterset_class=None, url_path="bulk")
    def bulk(self, request):
        principal = principal_for(request)
        data = validated(FindingBulkSerializer, request.data)
        common = {"org": principal.org, "finding_ids": data["findings"], "by": principal.actor,
                  "token": principal.token, "ip": client_ip(request)}
        try:
            if data["action"] == "assign":
                changed = findings_assign_bulk(assignee=data.get("assignee"), **common)
            elif data["action"] == "ticket":
                changed = findings_ticket_bulk(url=data["url"], key=data["key"], **common)
            else:
                changed = findings_comment_bulk(body=data["body"], **common)
        except DjangoValidationError as exc:
            raise ValidationError({"non_field_errors": exc.messages}) from None
        return Response({"changed": changed})


# --- saved views ----------------------------------------------------------------------------


class SavedViewSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField(help_text="The author's user name; null when saved by an API token")
    mine = serializers.SerializerMethodField(help_text="Saved by you (this token, or your account)")

    class Meta:
        model = SavedView
        fields = ["id", "name", "query", "shared", "owner", "mine", "created_at", "updated_at"]
        read_only_fields = fields

    def get_owner(self, view) -> str | None:
        return view.owner.get_username() if view.owner_id else None

    def get_mine(self, view) -> bool:
        return saved_view_owned_by(view, self.context["principal"])


class SavedViewWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the navigation's findings menu shows")
    query = serializers.CharField(max_length=2000, allow_blank=True, default="",
                                  help_text="The findings list's query string, e.g. severity=critical&status=open; "
                                            "checked: an unknown filter or value is refused")
    shared = serializers.BooleanField(default=False, help_text="Listed for every member of the organization")


SAVED_VIEW_EXAMPLE = {"id": 3, "name": "Critical, open", "query": "severity=critical&status=open", "shared": True,
                      "owner": "alice", "mine": True, "created_at": "2026-12-01T09:00:00Z",
                      "updated_at": "2026-12-01T09:00:00Z"}


def _service_errors(call):
    try:
        return call()
    except DjangoValidationError as exc:
        raise ValidationError({"query" if "filter" in " ".join(exc.messages) else "non_field_errors":
                               exc.messages}) from None


class SavedViewViewSet(viewsets.GenericViewSet):
    """Named filters of the findings list: yours and the organization's shared ones."""

    serializer_class = SavedViewSerializer
    pagination_class = PageNumberPagination
    filterset_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SavedView.objects.none()
        return saved_view_list_for(principal_for(self.request)).select_related("owner")

    def _data(self, view, **kwargs):
        return SavedViewSerializer(view, context={"principal": principal_for(self.request)}, **kwargs).data

    @api_operation(summary="List saved views", responses={200: SavedViewSerializer(many=True)},
                   description="Yours and those shared with the organization, by name.",
                   examples=[page_example("Views", SAVED_VIEW_EXAMPLE)])
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self._data(page, many=True))

    @api_operation(summary="Get a saved view", responses={200: SavedViewSerializer},
                   examples=[example("A view", SAVED_VIEW_EXAMPLE)])
    def retrieve(self, request, pk=None):
        return Response(self._data(saved_view_for(principal_for(request), pk)))

    @api_operation(summary="Save a view", request=SavedViewWriteSerializer, responses={201: SavedViewSerializer},
                   errors=(400, 401, 403, 429),
                   description="A filter that does not parse (an unknown parameter or value) is a 400 saying what, "
                               "and nothing is saved. A token's view belongs to the token.",
                   examples=[example("Shared", {"name": "Critical, open", "query": "severity=critical&status=open",
                                                "shared": True}, request=True),
                             example("Saved", SAVED_VIEW_EXAMPLE, status=201)])
    def create(self, request):
        principal = principal_for(request)
        data = validated(SavedViewWriteSerializer, request.data)
        view = _service_errors(lambda: saved_view_create(
            org=principal.org, name=data["name"], query=data["query"], shared=data["shared"], by=principal.actor,
            token=principal.token, ip=client_ip(request)))
        return Response(self._data(view), status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/saved-views/{view.pk}/"})

    @api_operation(summary="Change a saved view", request=SavedViewWriteSerializer, responses={200: SavedViewSerializer},
                   errors=WRITE_ERRORS,
                   description="Your own views; owners and admins change the shared ones too. Fields not sent stay.",
                   examples=[example("Rename", {"name": "Critical"}, request=True)])
    def partial_update(self, request, pk=None):
        principal = principal_for(request)
        view = writable_saved_view_for(principal, pk)
        data = validated(SavedViewWriteSerializer, request.data, partial=True)
        view = _service_errors(lambda: saved_view_update(
            view=view, name=data.get("name"), query=data.get("query"), shared=data.get("shared"),
            by=principal.actor, token=principal.token, ip=client_ip(request)))
        return Response(self._data(view))

    @api_operation(summary="Delete a saved view", responses={204: None}, errors=WRITE_ERRORS,
                   description="Your own views; owners and admins delete the shared ones too.")
    def destroy(self, request, pk=None):
        principal = principal_for(request)
        view = writable_saved_view_for(principal, pk)
        saved_view_delete(view=view, by=principal.actor, token=principal.token, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- imports --------------------------------------------------------------------------------


class ImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The scanner's results file")
    format = serializers.ChoiceField(choices=[], help_text="The importer that reads it")
    node = serializers.CharField(required=False, allow_blank=True, max_length=255,
                                 help_text="Node address for findings that name no host (SARIF, image scans)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["format"].choices = import_requests.import_formats()


class ImportRequestSerializer(serializers.ModelSerializer):
    session = serializers.IntegerField(source="session_id", allow_null=True)

    class Meta:
        model = ImportRequest
        fields = ["id", "status", "format", "filename", "size", "sha256", "node_address", "session", "counts",
                  "reason", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


IMPORT_EXAMPLE = {
    "id": 5, "status": "succeeded", "format": "nuclei", "filename": "nuclei.jsonl", "size": 48213,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "node_address": "", "session": 31,
    "counts": {"session": 31, "format": "nuclei", "filename": "nuclei.jsonl", "findings": 120, "nodes": 4,
               "nodes_created": 0, "new": 100, "updated": 0, "reopened": 0, "fixed": 2, "unchanged": 20},
    "reason": "", "created_at": "2026-11-30T21:00:00Z", "started_at": "2026-11-30T21:00:01Z",
    "finished_at": "2026-11-30T21:00:03Z",
}


class ImportRequestViewSet(viewsets.GenericViewSet):
    serializer_class = ImportRequestSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]
    pagination_class = PageNumberPagination
    filterset_class = None

    def get_queryset(self):
        return organization_rows(self, ImportRequest).order_by("-created_at", "-id")

    @api_operation(summary="List imports", responses={200: ImportRequestSerializer(many=True)},
                   examples=[page_example("Imports", IMPORT_EXAMPLE)])
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ImportRequestSerializer(page, many=True).data)

    @api_operation(summary="Get an import", responses={200: ImportRequestSerializer},
                   description="Poll until `status` is succeeded (with `counts` and the import's `session`), "
                               "rejected (with the `reason`: nothing was written) or failed.",
                   examples=[example("Imported", IMPORT_EXAMPLE),
                             example("Rejected", {**IMPORT_EXAMPLE, "status": "rejected", "session": None,
                                                  "counts": {}, "reason": "nuclei.jsonl line 3: not JSON"})])
    def retrieve(self, request, pk=None):
        found = self.get_queryset().filter(pk=pk_or_404(pk)).first()
        if found is None:
            raise Http404("No such import")
        return Response(ImportRequestSerializer(found).data)

    @idempotent_operation(
        summary="Import a scanner file", request={"multipart/form-data": ImportCreateSerializer},
        responses={202: ImportRequestSerializer}, errors=(400, 401, 403, 413, 429),
        description="Upload (multipart) an nmap XML, Nuclei JSONL, Trivy JSON, SSLyze JSON, OpenVAS XML or SARIF "
                    "file. It is imported on a queue with the same checks as `manage.py import_findings` (every "
                    "host within the scope, or nothing is written); answers 202 with `Location` to poll. Files "
                    "over WATCHPOST_IMPORT_MAX_BYTES are refused with 413.",
        examples=[example("Queued", {**IMPORT_EXAMPLE, "status": "queued", "session": None, "counts": {},
                                     "started_at": None, "finished_at": None}, status=202)])
    def create(self, request):
        principal = principal_for(request)
        limit = settings.WATCHPOST_IMPORT_MAX_BYTES
        too_big = problem_response(status_code=413, code="too_large", max_bytes=limit,
                                   detail=f"The file is larger than the limit of {limit:,} bytes.")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit + 64 * 1024:  # the multipart envelope around the file
            return too_big

        def perform():
            data = validated(ImportCreateSerializer, request.data)
            if data["file"].size > limit:
                return too_big
            created = import_requests.import_request_create(
                org=principal.org, upload=data["file"], fmt=data["format"], node_address=data.get("node", ""),
                by=principal.actor, token=principal.token, ip=client_ip(request))
            return Response(ImportRequestSerializer(created).data, status=status.HTTP_202_ACCEPTED,
                            headers={"Location": f"/api/v1/imports/{created.pk}/"})

        return idempotent(request, principal, perform)


# --- vulnerability feeds ---------------------------------------------------------------------


class FeedReader(permissions.BasePermission):
    """Feed status is the deployment's, not a tenant's: any valid token, staff, or a member of some organization.

    Anonymous callers get a 401; a logged-in account that belongs to no organization (and is not
    staff) a 403: it has no business reading the deployment's state.
    """

    message = "Feed status is for members of an organization and for staff."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiToken):
            return True
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        return user.is_staff or Membership.objects.filter(user=user).exists()


class FeedSerializer(serializers.Serializer):
    feed = serializers.ChoiceField(choices=["nvd", "kev", "epss"])
    name = serializers.CharField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    age_seconds = serializers.IntegerField(allow_null=True, help_text="Seconds since the last success")
    records = serializers.IntegerField()
    source_date = serializers.DateTimeField(allow_null=True, help_text="The feed's own date of what it holds")
    last_error = serializers.CharField(allow_blank=True)
    stale = serializers.BooleanField(help_text="No success for three days, or attempted and never successful")
    status = serializers.CharField()


FEED_EXAMPLE = [
    {"feed": "nvd", "name": "NVD CVE API 2.0", "last_attempt_at": "2026-12-07T05:00:02Z",
     "last_success_at": "2026-12-07T05:03:41Z", "age_seconds": 3600, "records": 251043,
     "source_date": "2026-12-07T05:00:00Z", "last_error": "", "stale": False, "status": "NVD feed current"},
    {"feed": "kev", "name": "CISA Known Exploited Vulnerabilities", "last_attempt_at": "2026-12-07T06:05:00Z",
     "last_success_at": "2026-12-07T06:05:01Z", "age_seconds": 1800, "records": 1484,
     "source_date": "2026-12-06T17:01:48Z", "last_error": "", "stale": False, "status": "KEV feed current"},
    {"feed": "epss", "name": "FIRST EPSS", "last_attempt_at": "2026-12-07T06:35:00Z",
     "last_success_at": "2026-12-02T06:35:09Z", "age_seconds": 431000, "records": 296330,
     "source_date": "2026-12-02T00:00:00Z", "stale": True,
     "last_error": "EPSS feed: HTTP 503 Service Unavailable from https://epss.empiricalsecurity.com/"
                   "epss_scores-current.csv.gz; gave up after 5 attempts",
     "status": "EPSS feed stale: last success 2026-12-02 06:35 UTC, 4 days ago"},
]


class FeedViewSet(viewsets.ViewSet):
    permission_classes = [FeedReader]
    serializer_class = FeedSerializer

    @api_operation(summary="Vulnerability feeds: last success, records, age, last error",
                   description="NVD, KEV and EPSS, each with when it last succeeded and what it holds. Read only; "
                               "any API token or console user of an organization may read it.",
                   responses=FeedSerializer(many=True), errors=(401, 403, 429),
                   examples=[example("Three feeds, EPSS stale", FEED_EXAMPLE)])
    def list(self, request):
        return Response(FeedSerializer(feed_statuses(), many=True).data)


ROUTES = [
    ("sessions", SessionViewSet, "session"),
    ("findings", FindingViewSet, "finding"),
    ("imports", ImportRequestViewSet, "import"),
    ("saved-views", SavedViewViewSet, "saved-view"),
    ("feeds", FeedViewSet, "feed"),
]
