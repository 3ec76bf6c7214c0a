"""The one way views, partials and API endpoints reach an intervention (see orgs/access.py)."""

from __future__ import annotations

from django.http import Http404

from interventions.models import Intervention
from nodes.access import pk_or_404


def intervention_for(membership, intervention_id) -> Intervention:
    intervention = (
        Intervention.objects.select_related("session", "job", "node")
        .filter(org=membership.org, pk=pk_or_404(intervention_id))
        .first()
    )
    if intervention is None:
        raise Http404("No such intervention")
    return intervention
