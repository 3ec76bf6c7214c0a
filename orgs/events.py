"""Domain events: what happened in an organization, told to the apps above that react to it.

A lower layer (an intervention opening, a session or an import finishing) publishes here instead
of importing the code that reacts; a higher app subscribes its handlers in its
``AppConfig.ready()`` (reports: webhooks and notification channels). Handlers run at once, in the
publisher's transaction, so what they write (the webhooks' outbox rows) commits or rolls back with
the event.
"""

from __future__ import annotations

from collections.abc import Callable

# Each kind carries one keyword, the row it is about, as the publisher holds it.
SESSION_FINISHED = "session.finished"  # session=: a scan session or an import, finished
INTERVENTION_OPENED = "intervention.opened"  # intervention=: newly opened (not a bump of an open one)
SETTINGS_CHANGED = "organization.settings_changed"  # org=, changes=: {setting: [before, after]}
# org=, node_ids=: nodes whose criticality a person changed (their findings' priority depends on it)
NODE_CRITICALITY_CHANGED = "node.criticality_changed"
# org=, finding_ids=: findings of one organization whose accepted risk expired and that are open again
# (scans.findings.sla_sweep, on beat; each finding's history says so)
RISK_ACCEPTANCE_EXPIRED = "finding.risk_acceptance_expired"
# org=, finding_ids=: open findings of one organization that went past their due date (each told once
# per breach; a due date moved into the future and passed again is told again)
SLA_BREACHED = "finding.sla_breached"
# org=, removed=: the organization's zones changed (networks, host names, a zone added or removed);
# ``removed`` holds the ids of zones about to be deleted, whose nodes must be placed elsewhere first.
ZONES_CHANGED = "zones.changed"

_subscribers: dict[str, list[Callable[..., object]]] = {}


def event_subscribe(kind: str, handler: Callable[..., object]) -> None:
    """Call ``handler`` with the event's keyword each time ``kind`` is published (once per handler)."""
    handlers = _subscribers.setdefault(kind, [])
    if handler not in handlers:
        handlers.append(handler)


def event_publish(kind: str, **subject) -> None:
    """Tell every subscriber of ``kind``, in subscription order; with none, it costs nothing."""
    for handler in _subscribers.get(kind, ()):
        handler(**subject)
