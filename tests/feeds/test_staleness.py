"""A feed without a success for three days opens one feed_stale intervention per organization; a success closes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from interventions.models import Intervention
from interventions.services import intervention_open
from scans.cve.feed_staleness import feed_staleness, feeds_staleness_check
from scans.cve.feed_sync import kev_import
from scans.models import FeedState
from tests.factories import OrganizationFactory
from tests.feeds.files import kev_bytes, kev_entry, write

pytestmark = pytest.mark.django_db

STALE = Intervention.Kind.FEED_STALE


def _stale_interventions(**filters):
    return Intervention.objects.filter(kind=STALE, **filters)


def _state(feed: str, *, success_days_ago: float | None, attempt_days_ago: float | None = 0,
           error: str = "") -> FeedState:
    now = timezone.now()
    return FeedState.objects.create(
        feed=feed, last_error=error, records=1500,
        last_success_at=None if success_days_ago is None else now - timedelta(days=success_days_ago),
        last_attempt_at=None if attempt_days_ago is None else now - timedelta(days=attempt_days_ago))


def test_a_feed_older_than_three_days_opens_one_intervention_in_each_organization(world):
    _state("kev", success_days_ago=4, error="KEV feed: HTTP 503 Service Unavailable")
    assert feeds_staleness_check() == {"opened": 2, "resolved": 0}
    opened = _stale_interventions(subject="feed:kev")
    assert sorted(opened.values_list("org__slug", flat=True)) == ["acme", "globex"]
    intervention = opened.get(org=world.org)
    assert intervention.title.startswith("KEV feed stale: last success ") and "4 days ago" in intervention.title
    assert intervention.context["error"] == "KEV feed: HTTP 503 Service Unavailable"


def test_a_second_check_opens_nothing_more_and_bumps_nothing(world):
    _state("epss", success_days_ago=5)
    feeds_staleness_check()
    assert feeds_staleness_check() == {"opened": 0, "resolved": 0}
    assert _stale_interventions().count() == 2
    assert set(_stale_interventions().values_list("occurrences", flat=True)) == {1}


def test_a_feed_synced_within_three_days_is_not_stale(world):
    _state("kev", success_days_ago=2.9)
    assert feeds_staleness_check() == {"opened": 0, "resolved": 0}


def test_a_feed_attempted_but_never_successful_is_stale_at_once(world):
    state = _state("nvd", success_days_ago=None, error="NVD feed: HTTP 403")
    assert feed_staleness(state).reason == "NVD feed has never synced successfully"
    feeds_staleness_check()
    assert _stale_interventions(subject="feed:nvd").count() == 2


def test_a_feed_never_attempted_is_not_judged(world):
    _state("epss", success_days_ago=None, attempt_days_ago=None)
    assert feeds_staleness_check() == {"opened": 0, "resolved": 0}


def test_the_next_success_of_the_feed_resolves_its_interventions_in_every_organization(world, tmp_path):
    _state("kev", success_days_ago=10)
    _state("epss", success_days_ago=10)
    feeds_staleness_check()
    kev_import(source=write(tmp_path, "kev.json", kev_bytes([kev_entry("CVE-2021-41773")])))
    assert set(_stale_interventions(subject="feed:kev").values_list("state", flat=True)) == {"resolved"}
    assert set(_stale_interventions(subject="feed:epss").values_list("state", flat=True)) == {"open"}
    assert _stale_interventions(subject="feed:kev").first().note == "The KEV feed synced successfully."


def test_a_feed_found_fresh_by_the_check_resolves_what_it_had_opened(world):
    state = _state("nvd", success_days_ago=6)
    feeds_staleness_check()
    FeedState.objects.filter(pk=state.pk).update(last_success_at=timezone.now())  # written by NVD's own sync
    assert feeds_staleness_check() == {"opened": 0, "resolved": 2}
    assert not Intervention.objects.unresolved().filter(kind=STALE).exists()


def test_an_acknowledged_intervention_is_not_doubled_and_a_new_organization_gets_its_own(world):
    _state("kev", success_days_ago=4)
    feeds_staleness_check()
    _stale_interventions(org=world.org).update(state="acknowledged")
    OrganizationFactory(slug="initech")
    assert feeds_staleness_check() == {"opened": 1, "resolved": 0}
    assert _stale_interventions(org__slug="initech").count() == 1


def test_the_same_subject_in_two_organizations_is_two_interventions(world):
    first = intervention_open(org=world.org, kind=STALE, subject="feed:kev", title="KEV feed stale")
    second = intervention_open(org=world.other_org, kind=STALE, subject="feed:kev", title="KEV feed stale")
    again = intervention_open(org=world.org, kind=STALE, subject="feed:kev", title="KEV feed stale")
    assert first.pk != second.pk and again.pk == first.pk and again.occurrences == 2


def test_the_intervention_page_says_who_fixes_a_stale_feed_and_how(client, world):
    _state("epss", success_days_ago=4)
    feeds_staleness_check()
    intervention = _stale_interventions(org=world.org).get()
    client.force_login(world.analyst)
    content = client.get(f"/o/{world.org.slug}/interventions/{intervention.pk}/").content.decode()
    assert "EPSS feed stale" in content and "import_epss" in content
    assert "resolves this in every organization" in content
