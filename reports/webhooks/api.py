"""Webhook endpoints (every notification channel: signed webhooks, Slack, Teams, e-mail) and their
delivery logs over the API: ``/api/v1/webhooks/``.

Webhooks are organization settings: console users manage them as owners and admins; of
tokens, a ``read`` token reads them and a ``read_write`` token also manages them (it is how a
SOAR or ticketing integration registers itself). The signing secret is in the creation
response only. Every change goes through ``reports.webhooks.services`` and is audited with
the token.
"""

from __future__ import annotations

from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api_conventions import (
    IdCursorPagination,
    PageNumberPagination,
    api_operation,
    example,
    list_operation,
    validated,
)
from config.api_errors import problem_response
from orgs.access import client_ip
from orgs.permissions import organization_rows, principal_for
from reports.models import WebhookDelivery, WebhookEndpoint
from reports.webhooks import services

WRITE_ERRORS = (400, 401, 403, 404, 429)


class CanManageWebhooks(permissions.BasePermission):
    """Owners and admins (session); tokens read, and read_write tokens write."""

    def has_permission(self, request, view) -> bool:
        principal = principal_for(request)
        if principal.token is not None:
            if request.method in permissions.SAFE_METHODS or principal.token.can_write:
                return True
            raise exceptions.PermissionDenied("This token is read-only; a read_write token is needed to write.")
        if not principal.can_manage:
            raise exceptions.PermissionDenied("Only owners and admins manage webhooks.")
        return True


class WebhookEndpointSerializer(serializers.ModelSerializer):
    # Plain text, not an enum: "state" already names the interventions' states in the schema.
    state = serializers.CharField(help_text="enabled, or paused (deliveries held until resumed)")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "kind", "url", "description", "events", "min_severity", "email_addresses", "email_members",
                  "email_assignees", "state", "paused_reason", "paused_at", "consecutive_failures", "pinned_address",
                  "created_at"]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="The signing secret: returned here once, never again")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointWriteSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=WebhookEndpoint.Kind.choices, default=WebhookEndpoint.Kind.WEBHOOK,
                                   help_text="On creation only: webhook (signed), slack, teams or email")
    url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="",
                               help_text="Every kind but email. Checked against the organization's scope and the "
                                         "deployment's allowed networks, now and at every delivery")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEndpoint.Event.choices),
                                   allow_empty=False)
    min_severity = serializers.ChoiceField(choices=[(s, s) for s in services.SEVERITIES], default="high",
                                           help_text="finding.new: the lowest severity sent")
    email_addresses = serializers.ListField(child=serializers.EmailField(), required=False, default=list,
                                            max_length=services.EMAIL_ADDRESSES_MAX, help_text="email: addresses")
    email_members = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list,
                                          help_text="email: user ids of members (refused if not members)")
    email_assignees = serializers.BooleanField(required=False, default=False,
                                               help_text="email: also the assignees of the event's findings")


class WebhookPauseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    # Plain text, not an enum: "status" already names several enums in the schema.
    status = serializers.CharField(help_text="pending, retrying, succeeded, failed, or held (endpoint paused)")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_type", "event_id", "status", "attempts", "response_code", "duration_ms",
                  "last_error", "next_attempt_at", "created_at", "delivered_at", "payload"]
        read_only_fields = fields


ENDPOINT_EXAMPLE = {
    "id": 2, "kind": "webhook", "url": "https://soar.lab.internal/hooks/watchpost", "description": "SOAR intake",
    "events": ["finding.new", "intervention.opened"], "min_severity": "high", "email_addresses": [],
    "email_members": [], "email_assignees": False, "state": "enabled",
    "paused_reason": "", "paused_at": None, "consecutive_failures": 0, "pinned_address": "127.0.10.20",
    "created_at": "2026-11-30T21:00:00Z",
}
DELIVERY_EXAMPLE = {
    "id": 31, "event_type": "finding.new", "event_id": "5b0c1d8e-3f5e-4b7a-9d51-0f1e2a3b4c5d", "status": "retrying",
    "attempts": 2, "response_code": 503, "duration_ms": 41, "last_error": "HTTP 503",
    "next_attempt_at": "2026-11-30T21:10:20Z", "created_at": "2026-11-30T21:09:00Z", "delivered_at": None,
    "payload": {"id": "5b0c1d8e-3f5e-4b7a-9d51-0f1e2a3b4c5d", "type": "finding.new",
                "data": {"session_id": 12, "count": 1, "findings": [{"id": 9001, "severity": "critical"}]}},
}


def _refused(exc: services.WebhookError) -> exceptions.ValidationError:
    return exceptions.ValidationError({exc.field: [str(exc)]})


@list_operation(summary="List webhook endpoints", description="The organization's endpoints, oldest first.",
                responses={200: WebhookEndpointSerializer(many=True)},
                examples=[example("Endpoints", ENDPOINT_EXAMPLE)])
class WebhookEndpointViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = WebhookEndpointSerializer
    pagination_class = PageNumberPagination
    permission_classes = [CanManageWebhooks]

    def get_queryset(self):
        return organization_rows(self, WebhookEndpoint).prefetch_related("email_members").order_by("created_at", "id")

    def get_serializer_class(self):
        if self.action in ("create", "partial_update"):
            return WebhookEndpointWriteSerializer
        if self.action == "pause":
            return WebhookPauseSerializer
        if self.action == "deliveries":
            return WebhookDeliverySerializer
        return WebhookEndpointSerializer

    def _endpoint(self, pk) -> WebhookEndpoint:
        return services.webhook_endpoint_for(principal_for(self.request), pk)

    def _who(self) -> dict:
        principal = principal_for(self.request)
        return {"by": principal.actor, "token": principal.token, "ip": client_ip(self.request)}

    @api_operation(summary="Get a webhook endpoint", responses={200: WebhookEndpointSerializer},
                   examples=[example("An endpoint", ENDPOINT_EXAMPLE)])
    def retrieve(self, request, pk=None):
        return Response(WebhookEndpointSerializer(self._endpoint(pk)).data)

    @api_operation(summary="Add a webhook endpoint", request=WebhookEndpointWriteSerializer,
                   responses={201: WebhookEndpointCreatedSerializer}, errors=WRITE_ERRORS,
                   description="`kind` webhook (signed, the default), slack, teams or email. A URL must pass the "
                               "same network policy as scan targets (refused with the reason otherwise); an email "
                               "channel names addresses, members or the assignees instead. A signed webhook's "
                               "response carries the signing `secret`, once.",
                   examples=[example("Add", {"url": "https://soar.lab.internal/hooks/watchpost",
                                             "events": ["finding.new"], "min_severity": "critical"}, request=True),
                             example("Added", {**ENDPOINT_EXAMPLE, "secret": "whsec_3q2+7w..."}, status=201)])
    def create(self, request):
        data = validated(WebhookEndpointWriteSerializer, request.data)
        try:
            endpoint, secret = services.webhook_endpoint_create(org=principal_for(request).org, **data, **self._who())
        except services.WebhookError as exc:
            raise _refused(exc) from None
        data = WebhookEndpointSerializer(endpoint).data
        if secret:
            data["secret"] = secret
        return Response(data, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    @api_operation(summary="Change a webhook endpoint", request=WebhookEndpointWriteSerializer(partial=True),
                   responses={200: WebhookEndpointSerializer}, errors=WRITE_ERRORS,
                   description="Any of url, description, events, min_severity; a new URL is checked again.",
                   examples=[example("Raise the bar", {"min_severity": "critical"}, request=True),
                             example("Changed", {**ENDPOINT_EXAMPLE, "min_severity": "critical"})])
    def partial_update(self, request, pk=None):
        endpoint = self._endpoint(pk)
        data = validated(WebhookEndpointWriteSerializer, request.data, partial=True)
        if "kind" in data and data.pop("kind") != endpoint.kind:
            raise exceptions.ValidationError({"kind": ["A channel keeps its kind; add a new channel instead."]})
        try:
            endpoint = services.webhook_endpoint_update(endpoint=endpoint, **data, **self._who())
        except services.WebhookError as exc:
            raise _refused(exc) from None
        return Response(WebhookEndpointSerializer(endpoint).data)

    @api_operation(summary="Delete a webhook endpoint", responses={204: None}, errors=WRITE_ERRORS,
                   description="Its delivery log goes with it; undelivered events are dropped.")
    def destroy(self, request, pk=None):
        services.webhook_endpoint_delete(endpoint=self._endpoint(pk), **self._who())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @api_operation(summary="Pause a webhook endpoint", request=WebhookPauseSerializer,
                   responses={200: WebhookEndpointSerializer}, errors=WRITE_ERRORS,
                   description="New deliveries are held (status `held`) until the endpoint is resumed.",
                   examples=[example("Pause", {"reason": "Receiver maintenance until 22:00"}, request=True),
                             example("Paused", {**ENDPOINT_EXAMPLE, "state": "paused",
                                                "paused_reason": "Receiver maintenance until 22:00",
                                                "paused_at": "2026-11-30T21:30:00Z"})])
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        endpoint = self._endpoint(pk)
        reason = validated(WebhookPauseSerializer, request.data)["reason"] or "Paused over the API."
        services.webhook_endpoint_pause(endpoint=endpoint, reason=reason, **self._who())
        endpoint.refresh_from_db()
        return Response(WebhookEndpointSerializer(endpoint).data)

    @api_operation(summary="Resume a webhook endpoint", request=None, responses={200: WebhookEndpointSerializer},
                   errors=WRITE_ERRORS,
                   description="Held deliveries go out, the failure count restarts and the endpoint's "
                               "`webhook_failing` intervention resolves. `released` says how many were held.",
                   examples=[example("Resumed", {**ENDPOINT_EXAMPLE, "released": 3})])
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        endpoint = self._endpoint(pk)
        released = services.webhook_endpoint_resume(endpoint=endpoint, **self._who())
        endpoint.refresh_from_db()
        return Response({**WebhookEndpointSerializer(endpoint).data, "released": released})

    @api_operation(summary="An endpoint's delivery log", responses={200: WebhookDeliverySerializer(many=True)},
                   description="Newest first, cursor-paginated; `?status=failed` (pending, retrying, succeeded, "
                               "failed, held) filters.",
                   examples=[example("Deliveries", DELIVERY_EXAMPLE)])
    @action(detail=True, methods=["get"], pagination_class=IdCursorPagination)
    def deliveries(self, request, pk=None):
        endpoint = self._endpoint(pk)
        wanted = request.query_params.get("status", "")
        if wanted and wanted not in WebhookDelivery.Status.values:
            raise exceptions.ValidationError({"status": [f"Choose from {', '.join(WebhookDelivery.Status.values)}."]})
        page = self.paginate_queryset(WebhookDelivery.objects.filter(endpoint=endpoint, **(
            {"status": wanted} if wanted else {})))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @api_operation(summary="Send a failed delivery again", request=None, responses={200: WebhookDeliverySerializer},
                   errors=(*WRITE_ERRORS, 409),
                   description="Same delivery id and body, a fresh set of attempts. Only a failed delivery (409 "
                               "otherwise).",
                   examples=[example("Queued again", {**DELIVERY_EXAMPLE, "status": "pending", "attempts": 0,
                                                      "next_attempt_at": None})])
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[0-9]+)/redeliver")
    def redeliver(self, request, pk=None, delivery_id=None):
        delivery = services.webhook_delivery_for(self._endpoint(pk), delivery_id)
        if not services.webhook_delivery_redeliver(delivery=delivery, **self._who()):
            return problem_response(status_code=409, code="invalid_transition",
                                    detail=f"Delivery {delivery.pk} is {delivery.status}; only a failed one is sent "
                                           "again.")
        delivery.refresh_from_db()
        return Response(WebhookDeliverySerializer(delivery).data)


ROUTES = [("webhooks", WebhookEndpointViewSet, "webhook")]
