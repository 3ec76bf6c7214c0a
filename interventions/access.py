"""The one way views, partials and API endpoints reach an intervention (see orgs/access.py)."""

from __future__ import annotations

from interventions.models import Intervention
from orgs.access import one_or_404, pk_or_404


def intervention_for(membership, intervention_id) -> Intervention:
    return one_or_404(Intervention.objects.select_related("session", "job", "node")
                      .filter(org=membership.org, pk=pk_or_404(intervention_id)), "intervention")
