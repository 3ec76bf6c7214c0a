"""A vulnerability feed that stopped succeeding becomes a ``feed_stale`` intervention in every organization.

Every organization's priorities and matches read the same deployment-wide feeds, so each
organization's queue gets its own intervention (subject ``feed:<name>``, one unresolved per
organization, as ``intervention_open`` keeps every kind).

A feed is judged once it has been attempted (its ``FeedState`` row has an attempt: a sync on
beat, a sync or an import by hand); a feed nobody ever tried to sync is not judged, so a fresh
install is not flagged before its first daily run. It is **stale** when its last success is
older than ``WATCHPOST_FEED_STALE_DAYS`` (3), or when it was attempted and has never succeeded:
then there is no data at all, which is worse than old data, and is said at once. The next
success of the feed resolves its interventions (the importers call
:func:`feed_stale_interventions_resolve`; the periodic check resolves them too, for a feed whose
sync is written elsewhere, such as NVD's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.utils import timezone

from interventions.models import Intervention
from interventions.services import InterventionTransitionError, intervention_open, intervention_resolve
from orgs.models import Organization
from scans.models import Feed, FeedState

logger = structlog.get_logger(__name__)

KIND = Intervention.Kind.FEED_STALE


def feed_subject(feed: str) -> str:
    return f"feed:{feed}"


def stale_after() -> timedelta:
    return timedelta(days=settings.WATCHPOST_FEED_STALE_DAYS)


@dataclass(frozen=True)
class Staleness:
    stale: bool
    reason: str  # in words, for the intervention's title and the feeds page


def feed_staleness(state: FeedState, *, now: datetime | None = None) -> Staleness:
    """Is this feed stale, and why (see the module docstring)."""
    now = now or timezone.now()
    name = Feed(state.feed).name
    if state.last_success_at is None:
        if state.last_attempt_at is None:
            return Staleness(False, f"{name} feed never attempted")
        return Staleness(True, f"{name} feed has never synced successfully")
    age = now - state.last_success_at
    if age > stale_after():
        return Staleness(True, f"{name} feed stale: last success {state.last_success_at:%Y-%m-%d %H:%M} UTC, "
                               f"{age.days} days ago")
    return Staleness(False, f"{name} feed current")


def feeds_staleness_check(*, now: datetime | None = None) -> dict[str, int]:
    """Open a ``feed_stale`` intervention per organization for each stale feed; resolve those of fresh feeds.

    Safe to run as often as beat likes: an organization that already has the feed's
    intervention unresolved gets no second one, and is not bumped on every run.
    """
    now = now or timezone.now()
    opened = resolved = 0
    for state in FeedState.objects.all():
        verdict = feed_staleness(state, now=now)
        if not verdict.stale:
            resolved += feed_stale_interventions_resolve(feed=state.feed)
            continue
        subject = feed_subject(state.feed)
        flagged = Intervention.objects.unresolved().filter(kind=KIND, subject=subject).values_list("org_id", flat=True)
        context = {
            "feed": state.feed, "error": state.last_error,
            "last_success_at": state.last_success_at.isoformat() if state.last_success_at else None,
            "last_attempt_at": state.last_attempt_at.isoformat() if state.last_attempt_at else None,
            "records": state.records,
        }
        for org in Organization.objects.exclude(pk__in=flagged):
            intervention_open(org=org, kind=KIND, subject=subject, title=verdict.reason, context=context)
            opened += 1
    if opened or resolved:
        logger.info("feeds.staleness_checked", opened=opened, resolved=resolved)
    return {"opened": opened, "resolved": resolved}


def feed_stale_interventions_resolve(*, feed: str) -> int:
    """The feed succeeded: resolve its unresolved ``feed_stale`` interventions in every organization."""
    resolved = 0
    for intervention in Intervention.objects.unresolved().filter(kind=KIND, subject=feed_subject(feed)):
        try:
            intervention_resolve(intervention=intervention, by=None,
                                 note=f"The {Feed(feed).name} feed synced successfully.")
            resolved += 1
        except InterventionTransitionError:
            pass  # a person closed it meanwhile
    return resolved


@dataclass(frozen=True)
class FeedStatus:
    """One feed as the feeds page and ``GET /api/v1/feeds/`` show it."""

    feed: str
    name: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    age_seconds: int | None  # since the last success
    records: int
    source_date: datetime | None
    last_error: str
    stale: bool
    status: str  # the verdict in words


def feed_statuses(*, now: datetime | None = None) -> list[FeedStatus]:
    """Every feed (NVD, KEV, EPSS) in one query, with a row never written shown as never attempted."""
    now = now or timezone.now()
    states = {state.feed: state for state in FeedState.objects.all()}
    statuses = []
    for feed in Feed:
        state = states.get(feed.value) or FeedState(feed=feed.value)
        verdict = feed_staleness(state, now=now)
        success = state.last_success_at
        statuses.append(FeedStatus(
            feed=feed.value, name=feed.label, last_attempt_at=state.last_attempt_at, last_success_at=success,
            age_seconds=int((now - success).total_seconds()) if success else None, records=state.records,
            source_date=state.source_date, last_error=state.last_error, stale=verdict.stale, status=verdict.reason,
        ))
    return statuses
