"""Interventions over the API: the queue, one intervention, and its actions.

Actions go through ``interventions.services`` with the caller's version: ``If-Match``
(412 when stale) or ``version`` in the body (409 when stale), both answered with the
current state. A transition the state machine refuses (resolving a dismissed one) is a
409 too, with its reason.
"""

from __future__ import annotations

import django_filters
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api_conventions import (
    IF_MATCH_PARAMETER,
    FilterSet,
    IdFilter,
    PageNumberPagination,
    api_operation,
    etag_for,
    list_operation,
    page_example,
    example,
    expected_version,
    stale_version_response,
    validated,
)
from config.api_errors import problem_response
from interventions import services
from interventions.access import intervention_for
from interventions.models import Intervention
from orgs.concurrency import StaleVersionError
from orgs.permissions import organization_rows, principal_for


class InterventionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Intervention
        fields = ["id", "kind", "state", "title", "subject", "session", "job", "node", "context", "occurrences",
                  "opened_at", "acknowledged_at", "closed_at", "note", "retry_count", "last_retry_at", "version"]
        read_only_fields = fields


class InterventionActionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1,
                                       help_text="The version you read; a stale one is a 409 with the current state")


class InterventionFilter(FilterSet):
    state = django_filters.ChoiceFilter(choices=Intervention.State.choices)
    kind = django_filters.ChoiceFilter(choices=Intervention.Kind.choices)
    node = IdFilter(field_name="node_id")
    session = IdFilter(field_name="session_id")

    class Meta:
        model = Intervention
        fields = ["state", "kind", "node", "session"]


INTERVENTION_EXAMPLE = {
    "id": 3, "kind": "job_exhausted", "state": "open", "title": "tls on 127.0.10.5 failed 3 times",
    "subject": "job:88", "session": 12, "job": 88, "node": 42,
    "context": {"error": "connection reset", "attempts": 3, "task_id": "c1d2...", "correlation_id": "3f2a9c..."},
    "occurrences": 1, "opened_at": "2026-11-30T21:02:00Z", "acknowledged_at": None, "closed_at": None, "note": "",
    "retry_count": 0, "last_retry_at": None, "version": 1,
}
ACTION_ERRORS = (400, 401, 403, 404, 409, 412, 429)


def intervention_action(*, summary: str, description: str, examples):
    """Route and document one of the four actions alike: ``POST /interventions/<id>/<action>/``
    with a note and the version read, answered with the intervention."""
    operation = api_operation(summary=summary, description=description, request=InterventionActionSerializer,
                              responses={200: InterventionSerializer}, errors=ACTION_ERRORS,
                              parameters=[IF_MATCH_PARAMETER], examples=examples)
    route = action(detail=True, methods=["post"], filterset_class=None)
    return lambda method: operation(route(method))


@list_operation(summary="List interventions", responses={200: InterventionSerializer(many=True)},
                description="Newest first; `state=open` for the queue.",
                examples=[page_example("The queue", INTERVENTION_EXAMPLE)])
class InterventionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = InterventionSerializer
    filterset_class = InterventionFilter
    pagination_class = PageNumberPagination

    def get_queryset(self):
        return organization_rows(self, Intervention).order_by("-opened_at", "-id")

    def get_serializer_class(self):
        if self.action in ("acknowledge", "resolve", "dismiss", "retry"):
            return InterventionActionSerializer
        return InterventionSerializer

    @api_operation(summary="Get an intervention", responses={200: InterventionSerializer},
                   description="The `ETag` header is its version, for `If-Match` on an action.",
                   examples=[example("An intervention", INTERVENTION_EXAMPLE)])
    def retrieve(self, request, pk=None):
        intervention = intervention_for(principal_for(request), pk)
        return Response(InterventionSerializer(intervention).data, headers={"ETag": etag_for(intervention.version)})

    def _act(self, request, pk, service, **extra):
        principal = principal_for(request)
        intervention = intervention_for(principal, pk)
        data = validated(InterventionActionSerializer, request.data)
        precondition, expected = expected_version(request, data.get("version"))
        kwargs = {"note": data["note"]} if service is not services.intervention_retry else {}
        try:
            intervention = service(intervention=intervention, by=principal.actor, token=principal.token,
                                   expected_version=expected, **kwargs, **extra)
        except StaleVersionError:
            current = intervention_for(principal, pk)
            return stale_version_response(precondition=precondition, current=InterventionSerializer(current).data,
                                          version=current.version, kind="intervention")
        except services.InterventionTransitionError as exc:
            current = intervention_for(principal, pk)
            return problem_response(status_code=409, code="invalid_transition", detail=str(exc),
                                    current=InterventionSerializer(current).data,
                                    headers={"ETag": etag_for(current.version)})
        intervention = intervention_for(principal, pk)
        return Response(InterventionSerializer(intervention).data, headers={"ETag": etag_for(intervention.version)})

    @intervention_action(summary="Acknowledge an intervention", description="Someone is on it: open → acknowledged.",
                         examples=[example("Acknowledge", {"note": "Looking into the TLS timeouts", "version": 1},
                                           request=True)])
    def acknowledge(self, request, pk=None):
        return self._act(request, pk, services.intervention_acknowledge)

    @intervention_action(summary="Resolve an intervention",
                         description="The cause is fixed: open or acknowledged → resolved.",
                         examples=[example("Resolve", {"note": "Firewall rule fixed"}, request=True)])
    def resolve(self, request, pk=None):
        return self._act(request, pk, services.intervention_resolve)

    @intervention_action(summary="Dismiss an intervention",
                         description="Not worth acting on: open or acknowledged → dismissed.",
                         examples=[example("Dismiss", {"note": "Node decommissioned"}, request=True)])
    def dismiss(self, request, pk=None):
        return self._act(request, pk, services.intervention_dismiss)

    @intervention_action(summary="Retry the failed work",
                         description="Re-queues only the failed job or stage; the intervention resolves itself when "
                                     "that work succeeds. A rejected import cannot be retried (409): upload a "
                                     "corrected file.",
                         examples=[example("Retry", {"version": 2}, request=True)])
    def retry(self, request, pk=None):
        return self._act(request, pk, services.intervention_retry)


ROUTES = [("interventions", InterventionViewSet, "intervention")]
