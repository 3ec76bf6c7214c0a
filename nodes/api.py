"""Nodes over the API: list, read, add (one or many), edit, enable/disable, delete; snapshot and score history.

Every write goes through ``nodes.services`` (scope guard, audit naming the token); the
serializers only validate and shape.
"""

from __future__ import annotations

import django_filters
import orjson
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.http import HttpResponse, HttpResponseNotModified
from drf_spectacular.utils import OpenApiResponse
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from config.api_conventions import (
    IF_NONE_MATCH_PARAMETER,
    WRITE_ERRORS,
    FastJSONRenderer,
    FilterSet,
    PageNumberPagination,
    ResourceSerializer,
    api_operation,
    example,
    idempotent_operation,
    page_example,
    validated,
)
from nodes import list_cache, services
from nodes.access import node_for
from nodes.fields import NODE, SNAPSHOT
from nodes.models import Node, NodeScore, NodeSnapshot, in_zone
from nodes.selectors import nodes_page_json
from orgs.access import client_ip
from orgs.idempotency import idempotent
from orgs.permissions import organization_rows, principal_for

# --- serializers ------------------------------------------------------------------------------


class SnapshotSerializer(ResourceSerializer):
    resource = SNAPSHOT
    open_findings = serializers.IntegerField(read_only=True)

    class Meta:
        model = NodeSnapshot


class NodeSerializer(ResourceSerializer):
    resource = NODE
    snapshot = SnapshotSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Node


CRITICALITY_HELP = "How much the business depends on the node: an input of its findings' priority"


class NodeCreateSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=255, help_text="IP address or host name, checked against the scope")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    criticality = serializers.ChoiceField(choices=Node.Criticality.choices, required=False,
                                          default=Node.Criticality.MEDIUM, help_text=CRITICALITY_HELP)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list,
                                 max_length=20)


class NodeUpdateSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=255, required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    hostname = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                     help_text="Name sent for SNI and Host on an IP node (never resolved)")
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=20)
    enabled = serializers.BooleanField(required=False, help_text="A disabled node is left out of sessions")
    criticality = serializers.ChoiceField(choices=Node.Criticality.choices, required=False, help_text=CRITICALITY_HELP)
    max_new_connections_per_second = serializers.IntegerField(
        required=False, allow_null=True, help_text="New connections a second every scanner keeps to (1-100,000; "
                                                   "null: no limit). Owners and admins")
    max_connections_at_once = serializers.IntegerField(
        required=False, allow_null=True, help_text="Connections open at once (1-10,000; null: no limit). "
                                                   "Owners and admins")


class BulkNodeSerializer(serializers.Serializer):
    # A ListField rather than many=True: drf-spectacular then writes the bounds (minItems, maxItems).
    nodes = serializers.ListField(child=NodeCreateSerializer(), allow_empty=False, min_length=1,
                                  max_length=services.BULK_MAX_ROWS,
                                  help_text=f"1 to {services.BULK_MAX_ROWS:,} nodes to add")


class BulkRowSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="1-based position in the request's list")
    address = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["added", "duplicate", "refused"])
    reason = serializers.CharField(allow_blank=True, help_text="Why it was refused or skipped")
    node_id = serializers.IntegerField(allow_null=True)


class BulkResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    refused = serializers.IntegerField()
    rows = BulkRowSerializer(many=True)


class NodeScoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = NodeScore
        fields = ["id", "session", "score", "grade", "counts", "created_at"]
        read_only_fields = fields


class NodeFilter(FilterSet):
    enabled = django_filters.BooleanFilter()
    state = django_filters.ChoiceFilter(choices=Node.State.choices)
    grade = django_filters.CharFilter(field_name="snapshot__grade", help_text="A, B, C, D or F")
    tag = django_filters.CharFilter(method="filter_tag", help_text="Nodes carrying this tag")
    q = django_filters.CharFilter(method="filter_q", help_text="Address or name contains")
    zone = django_filters.CharFilter(method="filter_zone", help_text="A zone's id, or `default` for nodes in no zone")

    class Meta:
        model = Node
        fields = ["enabled", "state", "grade", "tag", "q", "zone"]

    def filter_tag(self, queryset, name, value):
        return queryset.tagged(value)

    def filter_zone(self, queryset, name, value):
        try:
            return queryset.filter(in_zone(value))
        except ValueError:
            raise ValidationError({"zone": ["A zone's id (a whole number) or `default`."]}) from None

    def filter_q(self, queryset, name, value):
        return queryset.filter(Q(address__icontains=value) | Q(name__icontains=value))


NODE_EXAMPLE = {
    "id": 42, "address": "127.0.10.5", "name": "rpc-1", "hostname": "", "resolved_ip": "127.0.10.5", "state": "up",
    "enabled": True, "criticality": "high", "tags": ["prod", "rpc"], "protocols": ["http", "ethereum-rpc"], "open_ports": [22, 8545],
    "max_new_connections_per_second": None, "max_connections_at_once": None, "zone": 3, "zone_pinned": False,
    "last_discovered_at": "2026-11-30T20:00:00Z", "last_scanned_at": "2026-11-30T20:05:00Z",
    "created_at": "2026-11-01T09:00:00Z", "updated_at": "2026-11-30T20:05:00Z",
    "snapshot": {"score": 72, "grade": "C", "critical": 0, "high": 2, "medium": 3, "low": 1, "info": 4,
                 "open_findings": 10, "open_ports": [22, 8545], "protocols": ["http", "ethereum-rpc"],
                 "last_scan_status": "succeeded", "last_scan_at": "2026-11-30T20:05:00Z", "open_interventions": 0,
                 "updated_at": "2026-11-30T20:05:00Z"},
}


# --- views ----------------------------------------------------------------------------------


class NodeViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = NodeSerializer
    filterset_class = NodeFilter
    pagination_class = PageNumberPagination

    def get_queryset(self):
        return organization_rows(self, Node).select_related("snapshot").order_by("address")

    def get_serializer_class(self):
        return {"create": NodeCreateSerializer, "partial_update": NodeUpdateSerializer,
                "bulk": BulkNodeSerializer}.get(self.action, NodeSerializer)

    @api_operation(summary="List nodes", description="Nodes of your organization with their dashboard snapshot, "
                   "ordered by address. `page_size` up to 500. The `ETag` changes with any change to the "
                   "organization's nodes or snapshots: send it as `If-None-Match` to get a 304 while nothing "
                   "changed.",
                   responses={200: NodeSerializer(many=True), 304: OpenApiResponse(description="Not modified")},
                   parameters=[IF_NONE_MATCH_PARAMETER],
                   examples=[page_example("A page of nodes", NODE_EXAMPLE)])
    def list(self, request, *args, **kwargs):
        org = principal_for(request).org
        version = list_cache.current_version(org.pk)
        if version is None:
            return self._page(request, org)
        tag = list_cache.etag(version)
        if tag in request.headers.get("If-None-Match", ""):
            return HttpResponseNotModified(headers={"ETag": tag})
        key = list_cache.cache_key(org.pk, version, request.build_absolute_uri())
        body = list_cache.get(key)
        if body is None:
            response = self._page(request, org)
            if response.status_code != 200:
                return response
            body = FastJSONRenderer().render(response.data)
            list_cache.put(key, body)
        return HttpResponse(body, content_type="application/json", headers={"ETag": tag})

    def _page(self, request, org):
        # The page's ids in the list's order (a cheap index read), then the page itself.
        ids = self.paginate_queryset(self.filter_queryset(self.get_queryset()).values_list("id", flat=True))
        return self.get_paginated_response(orjson.Fragment(nodes_page_json(org=org, ids=list(ids))))

    @api_operation(summary="Get a node", responses={200: NodeSerializer},
                   examples=[example("A node", NODE_EXAMPLE)])
    def retrieve(self, request, pk=None):
        node = node_for(principal_for(request), pk)
        return Response(NodeSerializer(node).data)

    @api_operation(summary="Add a node", request=NodeCreateSerializer, responses={201: NodeSerializer},
                   errors=WRITE_ERRORS,
                   description="The address is checked against the organization's scope and the deployment's "
                               "allowed networks; a refusal is a 400 saying why.",
                   examples=[example("A node", {"address": "127.0.10.5", "name": "rpc-1", "tags": ["prod"]},
                                     request=True), example("Added", NODE_EXAMPLE, status=201)])
    def create(self, request):
        principal = principal_for(request)
        data = validated(NodeCreateSerializer, request.data)
        node = services.node_create(org=principal.org, address=data["address"], name=data["name"], tags=data["tags"],
                                    criticality=data["criticality"], by=principal.actor, token=principal.token,
                                    ip=client_ip(request))
        node = node_for(principal, node.pk)
        return Response(NodeSerializer(node).data, status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/nodes/{node.pk}/"})

    @api_operation(summary="Edit a node", request=NodeUpdateSerializer, responses={200: NodeSerializer},
                   errors=WRITE_ERRORS,
                   description="Change the name, address (checked against the scope again), hostname, tags, "
                               "criticality (low, medium, high, critical: its findings' priorities follow at once), "
                               "or enable/disable it. Fields left out stay as they are.",
                   examples=[example("Disable and retag", {"enabled": False, "tags": ["decommissioned"]},
                                     request=True)])
    def partial_update(self, request, pk=None):
        principal = principal_for(request)
        node = node_for(principal, pk)
        data = validated(NodeUpdateSerializer, request.data)
        ip = client_ip(request)
        fields = {k: data[k] for k in ("address", "name", "hostname", "tags", "criticality") if k in data}
        budget_fields = ("max_new_connections_per_second", "max_connections_at_once")
        if any(k in data for k in budget_fields):
            if not principal.can_manage:
                raise PermissionDenied("Only owners and admins set a node's connection budgets.")
            try:
                node = services.node_set_budgets(
                    node=node, new_per_second=data.get(budget_fields[0], node.max_new_connections_per_second),
                    at_once=data.get(budget_fields[1], node.max_connections_at_once), by=principal.actor,
                    token=principal.token, ip=ip)
            except DjangoValidationError as exc:
                field = budget_fields[0] if "per second" in exc.messages[0] else budget_fields[1]
                raise ValidationError({field: exc.messages}) from None
        if fields:
            node = services.node_update(node=node, by=principal.actor, token=principal.token, ip=ip, **fields)
        if "enabled" in data:
            node = services.node_set_enabled(node=node, enabled=data["enabled"], by=principal.actor,
                                             token=principal.token, ip=ip)
        return Response(NodeSerializer(node_for(principal, node.pk)).data)

    @api_operation(summary="Delete a node", responses={204: OpenApiResponse(description="Deleted")},
                   errors=(401, 403, 404, 429),
                   description="Deletes the node with its findings, jobs, snapshot and score history.")
    def destroy(self, request, pk=None):
        principal = principal_for(request)
        node = node_for(principal, pk)
        services.node_delete(node=node, by=principal.actor, token=principal.token, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @idempotent_operation(
        summary="Add many nodes", request=BulkNodeSerializer, responses={200: BulkResultSerializer},
        description="Adds every acceptable address and reports each row: added, duplicate (already a node, or "
                    "repeated in the list) or refused with the scope guard's reason. Send an `Idempotency-Key` to "
                    "make a retry safe.\n\n"
                    f"**Limits**: at most {services.BULK_MAX_ROWS:,} rows, as the console's bulk add (more is a "
                    f"400), in a body of at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes of JSON (larger is "
                    "a 413 naming the limit in `max_bytes`). Split a longer list into several requests.",
        examples=[
            example("Two addresses", {"nodes": [{"address": "127.0.10.6", "name": "web-2"},
                                                {"address": "10.1.2.3"}]}, request=True),
            example("Per-row result", {"added": 1, "duplicates": 0, "refused": 1, "rows": [
                {"row": 1, "address": "127.0.10.6", "outcome": "added", "reason": "", "node_id": 43},
                {"row": 2, "address": "10.1.2.3", "outcome": "refused",
                 "reason": "10.1.2.3 is outside the organization's scope", "node_id": None}]})])
    @action(detail=False, methods=["post"], url_path="bulk")
    def bulk(self, request):
        principal = principal_for(request)

        def perform():
            data = validated(BulkNodeSerializer, request.data)
            rows = [services.NodeRow(line=i, address=row["address"], name=row["name"], tags=tuple(row["tags"]),
                                     criticality=row["criticality"])
                    for i, row in enumerate(data["nodes"], start=1)]
            report = services.nodes_bulk_add(org=principal.org, rows=rows, by=principal.actor, token=principal.token,
                                             ip=client_ip(request))
            return Response({
                "added": report.added, "duplicates": report.duplicates, "refused": report.refused,
                "rows": [{"row": r.line, "address": r.address, "outcome": r.outcome, "reason": r.reason,
                          "node_id": r.node_id} for r in report.rows],
            })

        return idempotent(request, principal, perform)

    @api_operation(summary="A node's snapshot", responses={200: SnapshotSerializer},
                   description="The node's dashboard row, rewritten at scoring time: score, grade, open findings "
                               "by severity, open ports, last scan.",
                   examples=[example("Snapshot", NODE_EXAMPLE["snapshot"])])
    @action(detail=True, methods=["get"])
    def snapshot(self, request, pk=None):
        node = node_for(principal_for(request), pk)
        try:
            snapshot = node.snapshot
        except NodeSnapshot.DoesNotExist:
            snapshot = NodeSnapshot(node=node, org=node.org)
        return Response(SNAPSHOT.represent(snapshot))

    @api_operation(summary="A node's score history", responses={200: NodeScoreSerializer(many=True)},
                   description="One row per scored session, newest first (paginated).",
                   examples=[page_example("History", {"id": 7, "session": 12, "score": 72, "grade": "C",
                                                        "counts": {"high": 2, "medium": 3},
                                                        "created_at": "2026-11-30T20:05:00Z"})])
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=PageNumberPagination)
    def scores(self, request, pk=None):
        node = node_for(principal_for(request), pk)
        queryset = NodeScore.objects.filter(node=node).order_by("-created_at", "-id")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(NodeScoreSerializer(page, many=True).data)


ROUTES = [("nodes", NodeViewSet, "node")]
