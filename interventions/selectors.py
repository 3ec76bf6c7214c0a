"""Reads about interventions, always scoped to an organization."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Value, When

from interventions.models import Intervention

State = Intervention.State

# The queue's order: what needs a person first.
STATE_RANK = {State.OPEN: 0, State.ACKNOWLEDGED: 1, State.RESOLVED: 2, State.DISMISSED: 2}
UNRESOLVED = "unresolved"
CLOSED = "closed"


def _rank():
    return Case(*(When(state=s, then=Value(r)) for s, r in STATE_RANK.items()), default=Value(3),
                output_field=IntegerField())


def intervention_queue_for_org(*, org, kind: str = "", state: str = ""):
    """The queue: open first, then acknowledged, then closed; newest first within each.

    ``state`` is one state, "unresolved" (open or acknowledged), "closed" (resolved or
    dismissed) or empty for all. Job, node and who closed it come in the same query; the row
    shows only the session's id, so the session is not joined. The job's and node's large JSON
    and text columns are deferred: decoding them for 25 rows was a measurable part of the page.
    """
    rows = (Intervention.objects.for_org(org).select_related("job", "node", "closed_by")
            .defer("job__raw_result", "job__error", "node__protocols", "node__services", "node__tags",
                   "node__discovery_evidence"))
    if kind:
        rows = rows.filter(kind=kind)
    if state == UNRESOLVED:
        rows = rows.filter(state__in=Intervention.UNRESOLVED)
    elif state == CLOSED:
        rows = rows.exclude(state__in=Intervention.UNRESOLVED)
    elif state:
        rows = rows.filter(state=state)
    return rows.annotate(rank=_rank()).order_by("rank", "-opened_at", "-id")
