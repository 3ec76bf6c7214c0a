"""The caller's organization and its audit log over the API.

The audit log is for owners and admins; of tokens, only ``read_write`` ones read it (a
``read`` token acts as a viewer, and viewers do not read the audit log).
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_conventions import (
    WRITE_ERRORS,
    FilterSet,
    IdFilter,
    PageNumberPagination,
    UtcDateTimeFilter,
    api_operation,
    example,
    list_operation,
    page_example,
    validated,
)
from orgs.access import client_ip, zone_for
from orgs.models import AuditEvent, Zone
from orgs.services import SLA_FIELDS, organization_update_settings
from orgs.permissions import CanReadAudit, OrganizationMember, organization_rows, principal_for
from orgs.selectors import zone_list_for_org
from orgs.zones import zone_create, zone_delete, zone_update


class OrganizationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    scope_networks = serializers.ListField(child=serializers.CharField())
    scope_hostnames = serializers.ListField(child=serializers.CharField())
    default_profile = serializers.CharField(allow_null=True)
    schedule_crontab = serializers.CharField(allow_blank=True)
    schedule_timezone = serializers.CharField()
    potential_threshold = serializers.FloatField(
        help_text="Below this match confidence (0-1) a finding is potential until confirmed; edited in the console")
    sla_p1_days = serializers.IntegerField(min_value=1, max_value=3650, help_text="Days to fix a P1 finding (1-3650)")
    sla_p2_days = serializers.IntegerField(min_value=1, max_value=3650, help_text="Days to fix a P2 finding")
    sla_p3_days = serializers.IntegerField(min_value=1, max_value=3650, help_text="Days to fix a P3 finding")
    sla_p4_days = serializers.IntegerField(min_value=1, max_value=3650, help_text="Days to fix a P4 finding")
    node_count = serializers.IntegerField()
    score = serializers.IntegerField(allow_null=True, help_text="The latest organization score (0-100)")
    grade = serializers.CharField(allow_null=True)
    role = serializers.CharField(help_text="Your role: a read token is a viewer, a read_write token an analyst")
    token = serializers.DictField(allow_null=True, help_text="The token you called with: id, name, access, prefix")


class OrganizationSlaSerializer(serializers.Serializer):
    sla_p1_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    sla_p2_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    sla_p3_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    sla_p4_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)

    def validate(self, data):
        if not data:
            raise serializers.ValidationError("Send at least one of sla_p1_days .. sla_p4_days.")
        return data


class OrganizationView(APIView):
    permission_classes = [OrganizationMember]

    @api_operation(summary="Your organization", responses={200: OrganizationSerializer},
                   description="The organization your token (or the X-Watchpost-Org header) is scoped to, its "
                               "declared scope, schedule, latest score, and your role.",
                   examples=[example("Acme", {
                       "id": 1, "name": "Acme", "slug": "acme", "scope_networks": ["127.0.10.0/24"],
                       "scope_hostnames": [], "default_profile": "standard", "schedule_crontab": "0 3 * * *",
                       "schedule_timezone": "UTC", "potential_threshold": 0.6, "sla_p1_days": 7, "sla_p2_days": 30,
                       "sla_p3_days": 90, "sla_p4_days": 180, "node_count": 120, "score": 81, "grade": "B", "role": "analyst",
                       "token": {"id": 4, "name": "ci", "access": "read_write", "prefix": "wp_AbCdE"}})])
    def get(self, request):
        principal = principal_for(request)
        org = principal.org
        latest = org.scores.first()
        token = principal.token
        return Response({
            "id": org.pk, "name": org.name, "slug": org.slug, "scope_networks": org.scope_networks,
            "scope_hostnames": org.scope_hostnames,
            "default_profile": org.default_profile.slug if org.default_profile_id else None,
            "schedule_crontab": org.schedule_crontab, "schedule_timezone": org.schedule_timezone,
            "potential_threshold": org.potential_threshold,
            **{field: getattr(org, field) for field in SLA_FIELDS}, "node_count": org.nodes.count(),
            "score": latest.score if latest else None, "grade": latest.grade if latest else None,
            "role": principal.role,
            "token": {"id": token.pk, "name": token.name, "access": token.access, "prefix": token.prefix}
            if token is not None else None,
        })

    @api_operation(summary="Change your organization's SLA", request=OrganizationSlaSerializer,
                   responses={200: OrganizationSerializer}, errors=(400, 401, 403, 429),
                   description="Days to fix an open finding per priority (1 to 3,650 each; send the ones you "
                               "change). Owners and admins only. Every open finding's due date follows at once.",
                   examples=[example("Tighter P1", {"sla_p1_days": 3}, request=True)])
    def patch(self, request):
        principal = principal_for(request)
        if not principal.can_manage:
            raise exceptions.PermissionDenied("Only owners and admins change the organization's settings.")
        data = validated(OrganizationSlaSerializer, request.data)
        try:
            organization_update_settings(org=principal.org, by=principal.actor, ip=client_ip(request), **data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"non_field_errors": exc.messages}) from None
        principal.org.refresh_from_db()
        return self.get(request)


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    token = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ["id", "verb", "actor", "token", "target_type", "target_id", "target_repr", "changes", "ip",
                  "request_id", "created_at"]
        read_only_fields = fields

    def get_token(self, event) -> dict | None:
        if event.token_id is None:
            return None
        return {"id": event.token_id, "name": event.token.name, "prefix": event.token.prefix}


class AuditFilter(FilterSet):
    verb = django_filters.CharFilter(help_text="e.g. finding.triaged, session.started")
    target_type = django_filters.CharFilter(help_text="e.g. scans.finding, nodes.node")
    target_id = django_filters.CharFilter()
    token = IdFilter(field_name="token_id", help_text="Events made with this token (id)")
    created_from = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_to = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["verb", "target_type", "target_id", "token", "created_from", "created_to"]


@list_operation(summary="The audit log", responses={200: AuditEventSerializer(many=True)},
                description="Every change made by a person or a token, newest first. Owners and admins; of "
                            "tokens, read_write ones (a read token is a 403).",
                examples=[page_example("Events", {
                    "id": 77, "verb": "finding.triaged", "actor": None,
                    "token": {"id": 4, "name": "ci", "prefix": "wp_AbCdE"}, "target_type": "scans.finding",
                    "target_id": "9001", "target_repr": "[high] TLS 1.0 enabled",
                    "changes": {"status": ["open", "false_positive"]}, "ip": "127.0.0.1",
                    "request_id": "b7c1...", "created_at": "2026-11-30T21:05:00Z"})])
class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = AuditEventSerializer
    filterset_class = AuditFilter
    pagination_class = PageNumberPagination
    permission_classes = [OrganizationMember, CanReadAudit]

    def get_queryset(self):
        return organization_rows(self, AuditEvent).select_related("actor", "token").order_by("-created_at", "-id")


# -- zones ---------------------------------------------------------------------------


def _zone_manager(request):
    """The caller, when it may change zones (owners and admins; tokens only read them). Asked after
    the zone is found, so that another organization's zone is a 404 whoever asks."""
    principal = principal_for(request)
    if not principal.can_manage:
        raise exceptions.PermissionDenied("Only owners and admins change zones.")
    return principal


class ZoneSerializer(serializers.ModelSerializer):
    queue = serializers.CharField(read_only=True, help_text="The Celery queue its workers consume")
    nodes_count = serializers.IntegerField(read_only=True)
    workers_alive = serializers.IntegerField(read_only=True, help_text="Workers of the zone seen recently")

    class Meta:
        model = Zone
        fields = ["id", "name", "networks", "hostnames", "queue", "nodes_count", "workers_alive", "created_at"]
        read_only_fields = fields


class ZoneWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    networks = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=256)
    hostnames = serializers.ListField(child=serializers.CharField(max_length=253), required=False, max_length=256)


ZONE_EXAMPLE = {"id": 3, "name": "Branch office", "networks": ["10.20.0.0/16"], "hostnames": [], "queue": "zone-3",
                "nodes_count": 120, "workers_alive": 1, "created_at": "2026-12-01T09:00:00Z"}


class ZoneViewSet(viewsets.GenericViewSet):
    """Zones: parts of the organization's networks scanned by workers of their own (owners and admins write)."""

    serializer_class = ZoneSerializer
    pagination_class = PageNumberPagination
    permission_classes = [OrganizationMember]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Zone.objects.none()
        return zone_list_for_org(org=principal_for(self.request).org)

    def _shown(self, principal, zone_id) -> Response:
        return Response(ZoneSerializer(zone_list_for_org(org=principal.org).get(pk=zone_id)).data)

    @api_operation(summary="List zones", responses={200: ZoneSerializer(many=True)},
                   examples=[page_example("Zones", ZONE_EXAMPLE)])
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ZoneSerializer(page, many=True).data)

    @api_operation(summary="Get a zone", responses={200: ZoneSerializer}, examples=[example("A zone", ZONE_EXAMPLE)])
    def retrieve(self, request, pk=None):
        principal = principal_for(request)
        return self._shown(principal, zone_for(principal, pk).pk)

    @api_operation(summary="Add a zone", request=ZoneWriteSerializer, responses={201: ZoneSerializer},
                   errors=WRITE_ERRORS,
                   description="Each network must lie inside the organization's scope, and no network (or host "
                               "name) may already be another zone's; a refusal is a 400 saying why. The "
                               "organization's nodes are placed again at once.",
                   examples=[example("A zone", {"name": "Branch office", "networks": ["10.20.0.0/16"]}, request=True),
                             example("Added", ZONE_EXAMPLE, status=201)])
    def create(self, request):
        principal = _zone_manager(request)
        data = validated(ZoneWriteSerializer, request.data)
        zone = zone_create(org=principal.org, by=principal.actor, token=principal.token, ip=client_ip(request), **data)
        response = self._shown(principal, zone.pk)
        response.status_code = 201
        return response

    @api_operation(summary="Change a zone", request=ZoneWriteSerializer(partial=True), responses={200: ZoneSerializer},
                   errors=WRITE_ERRORS, description="Its nodes are placed again at once.",
                   examples=[example("New networks", {"networks": ["10.20.0.0/16", "10.21.0.0/16"]}, request=True),
                             example("Changed", ZONE_EXAMPLE)])
    def partial_update(self, request, pk=None):
        zone = zone_for(principal_for(request), pk)
        principal = _zone_manager(request)
        data = validated(ZoneWriteSerializer, request.data, partial=True)
        zone_update(zone=zone, by=principal.actor, token=principal.token, ip=client_ip(request), **data)
        return self._shown(principal, zone.pk)

    @api_operation(summary="Delete a zone", responses={204: OpenApiResponse(description="Deleted")},
                   errors=(401, 403, 404, 429),
                   description="Its nodes go back to the zones that still hold them, or to the default zone.")
    def destroy(self, request, pk=None):
        zone = zone_for(principal_for(request), pk)
        principal = _zone_manager(request)
        zone_delete(zone=zone, by=principal.actor, token=principal.token, ip=client_ip(request))
        return Response(status=204)


ROUTES = [("audit", AuditEventViewSet, "audit-event"), ("zones", ZoneViewSet, "zone")]
