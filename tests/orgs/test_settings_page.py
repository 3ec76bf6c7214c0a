"""The settings page: scope, schedule with its preview, profile, concurrency and cooldown; owners and admins only."""

from datetime import datetime, timezone

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from nodes.models import NodeSnapshot
from orgs.models import AuditEvent, Zone
from orgs.schedules import schedule_task_name
from orgs.selectors import schedule_next_runs
from scans.findings.scoring import scoring_run
from scans.models import ScanProfile
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.django_db


def settings_url(slug="acme"):
    return reverse("orgs:settings", args=[slug])


def valid(**overrides):
    data = {"scope_networks": "127.0.10.0/24", "scope_hostnames": "", "schedule_crontab": "", "schedule_timezone": "UTC",
            "default_profile": "", "max_concurrent_jobs": "50", "node_cooldown_minutes": "0", "potential_threshold": "0.6",
            "sla_p1_days": "7", "sla_p2_days": "30", "sla_p3_days": "90", "sla_p4_days": "180"}
    data.update(overrides)
    return data


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_see_the_settings(world, login, role):
    response = login(getattr(world, role)).get(settings_url())
    assert response.status_code == 200
    assert b"Scope networks" in response.content and b"Schedule (crontab)" in response.content


@pytest.mark.parametrize("role", ["analyst", "viewer"])
def test_analysts_and_viewers_get_403(world, login, role):
    assert login(getattr(world, role)).get(settings_url()).status_code == 403
    assert login(getattr(world, role)).post(settings_url(), valid()).status_code == 403


def test_another_organizations_settings_are_404(world, login):
    assert login(world.outsider).get(settings_url()).status_code == 404
    assert login(world.outsider).post(settings_url(), valid()).status_code == 404


def test_an_anonymous_visitor_is_sent_to_login(world, client):
    response = client.get(settings_url())
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_settings_refuse_other_methods(world, login):
    assert login(world.owner).put(settings_url()).status_code == 405


def test_saving_settings_enforces_csrf(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    assert client.post(settings_url(), valid(max_concurrent_jobs="7")).status_code == 403
    world.org.refresh_from_db()
    assert world.org.max_concurrent_jobs == 50


def test_saving_normalizes_the_scope_and_audits_only_what_changed(world, login):
    profile = ScanProfile.objects.get(org=None, slug="light")
    response = login(world.admin).post(settings_url(), valid(
        scope_networks="127.0.10.5/24\n127.0.10.0/24, 127.0.20.1", scope_hostnames="API.Lab.Internal.\n*.lab.internal",
        default_profile=str(profile.pk), max_concurrent_jobs="8", node_cooldown_minutes="30"))
    assert response.status_code == 302
    world.org.refresh_from_db()
    assert world.org.scope_networks == ["127.0.10.0/24", "127.0.20.1/32"]
    assert world.org.scope_hostnames == ["api.lab.internal", "*.lab.internal"]
    assert (world.org.default_profile, world.org.max_concurrent_jobs, world.org.node_cooldown_minutes) == (profile, 8, 30)
    event = AuditEvent.objects.get(verb="organization.settings_changed")
    assert event.actor == world.admin and event.org == world.org
    assert event.changes["max_concurrent_jobs"] == [50, 8]
    assert event.changes["default_profile"] == [None, "light"]
    assert event.changes["scope_networks"] == [["127.0.0.0/8"], ["127.0.10.0/24", "127.0.20.1/32"]]
    assert "schedule_timezone" not in event.changes


def test_saving_unchanged_settings_records_nothing(world, login):
    login(world.owner).post(settings_url(), valid(scope_networks="127.0.0.0/8"))
    assert not AuditEvent.objects.filter(verb="organization.settings_changed").exists()


@pytest.mark.parametrize("field,value,reason", [
    ("scope_networks", "not a cidr", b"is not a network"),
    ("scope_networks", "*", b"is not a network"),
    ("scope_networks", "127.0.0.0/33", b"is not a network"),
    ("scope_hostnames", "*", b"neither a CIDR nor a host name"),
    ("scope_hostnames", "http://x.internal/", b"neither a CIDR nor a host name"),
    ("scope_hostnames", "127.0.0.0/8", b"is a network"),
    ("schedule_crontab", "* * *", b"five crontab fields"),
    ("schedule_crontab", "61 * * * *", b"invalid crontab"),
    ("schedule_timezone", "Mars/Olympus", b"unknown timezone"),
    ("max_concurrent_jobs", "0", b"greater than or equal to 1"),
])
def test_invalid_values_are_refused_with_the_reason_and_nothing_changes(world, login, field, value, reason):
    response = login(world.owner).post(settings_url(), valid(**{field: value}))
    assert response.status_code == 400
    assert reason in response.content
    world.org.refresh_from_db()
    assert world.org.scope_networks == ["127.0.0.0/8"] and world.org.schedule_crontab == ""
    assert not AuditEvent.objects.filter(verb="organization.settings_changed").exists()


def test_saving_a_schedule_syncs_the_beat_row_and_removing_it_deletes_the_row(world, login):
    client = login(world.owner)
    client.post(settings_url(), valid(schedule_crontab="0  3 * * 1", schedule_timezone="Europe/Paris"))
    task = PeriodicTask.objects.get(name=schedule_task_name(world.org.pk))
    assert (task.crontab.hour, task.crontab.day_of_week, str(task.crontab.timezone)) == ("3", "1", "Europe/Paris")
    world.org.refresh_from_db()
    assert world.org.schedule_crontab == "0 3 * * 1"
    client.post(settings_url(), valid(schedule_crontab=""))
    assert not PeriodicTask.objects.filter(name=schedule_task_name(world.org.pk)).exists()


def test_the_page_previews_the_next_five_runs_in_the_organizations_timezone(world, login):
    world.org.schedule_crontab, world.org.schedule_timezone = "30 2 * * *", "Asia/Tokyo"
    world.org.save()
    response = login(world.owner).get(settings_url())
    runs = response.context["preview_runs"]
    assert len(runs) == 5 and all((r.hour, r.minute, str(r.tzinfo)) == (2, 30, "Asia/Tokyo") for r in runs)
    assert b"At 02:30" in response.content and b"02:30 JST" in response.content


def test_the_preview_fragment_follows_what_is_typed(world, login):
    response = login(world.owner).get(reverse("orgs:schedule_preview", args=["acme"]),
                                      {"schedule_crontab": "*/15 * * * *", "schedule_timezone": "UTC"})
    assert response.status_code == 200 and b"Every 15 minutes" in response.content
    assert response.content.count(b"<li>") == 5


def test_the_preview_fragment_explains_an_invalid_crontab(world, login):
    response = login(world.owner).get(reverse("orgs:schedule_preview", args=["acme"]), {"schedule_crontab": "nope"})
    assert response.status_code == 200 and b"five crontab fields" in response.content


def test_the_preview_fragment_is_for_managers_only(world, login, client):
    url = reverse("orgs:schedule_preview", args=["acme"])
    assert login(world.viewer).get(url).status_code == 403
    assert login(world.outsider).get(url).status_code == 404
    assert login(world.owner).post(url).status_code == 405
    client.logout()
    assert client.get(url).status_code == 302


def test_next_runs_follow_celery_crontab_semantics():
    after = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    runs = schedule_next_runs(crontab="0 9 * * 1", tz="UTC", after=after)  # Mondays at 09:00
    assert [r.date().isoformat() for r in runs] == ["2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26", "2026-02-02"]


def test_next_runs_skip_a_wall_time_that_a_dst_change_removes():
    after = datetime(2026, 3, 27, 0, 0, tzinfo=timezone.utc)
    runs = schedule_next_runs(crontab="30 2 * * *", tz="Europe/Paris", after=after, count=3)
    # 29 March 2026: clocks go from 02:00 to 03:00 in Paris; there is no 02:30 that day.
    assert [r.day for r in runs] == [27, 28, 30]


def test_a_rare_schedule_still_finds_its_runs():
    runs = schedule_next_runs(crontab="0 0 29 2 *", tz="UTC", count=2,
                              after=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert [r.year for r in runs] == [2028, 2032]


def test_the_service_refuses_an_invalid_schedule_and_keeps_everything_as_it_was(world):
    from django.core.exceptions import ValidationError

    from orgs.services import organization_update_settings

    with pytest.raises(ValidationError, match="invalid crontab"):
        organization_update_settings(org=world.org, by=world.owner, max_concurrent_jobs=3, schedule_crontab="99 * * * *")
    world.org.refresh_from_db()
    assert (world.org.max_concurrent_jobs, world.org.schedule_crontab) == (50, "")
    assert not AuditEvent.objects.filter(verb="organization.settings_changed").exists()


def test_the_service_takes_settings_only(world):
    from orgs.services import organization_update_settings

    with pytest.raises(TypeError, match="not a setting: slug"):
        organization_update_settings(org=world.org, by=world.owner, slug="hijacked")


def test_an_owner_sets_the_certainty_threshold_and_the_organization_is_scored_again(world, login):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, severity="critical", match_confidence=0.5)
    scoring_run(org=world.org)
    assert NodeSnapshot.objects.get(node=node).critical == 0

    response = login(world.owner).post(settings_url(), valid(potential_threshold="0.4"))

    assert response.status_code == 302
    world.org.refresh_from_db()
    assert world.org.potential_threshold == 0.4
    assert NodeSnapshot.objects.get(node=node).critical == 1
    event = AuditEvent.objects.get(verb="organization.settings_changed")
    assert event.changes["potential_threshold"] == [0.6, 0.4]


@pytest.mark.parametrize("value", ["1.5", "-0.1", "often"])
def test_a_threshold_outside_0_to_1_is_refused_and_changes_nothing(world, login, value):
    response = login(world.owner).post(settings_url(), valid(potential_threshold=value))

    assert response.status_code == 400
    assert b"between 0 and 1" in response.content.lower()
    world.org.refresh_from_db()
    assert world.org.potential_threshold == 0.6


# -- scan windows --------------------------------------------------------------------


def test_an_owner_sets_scan_windows_and_the_change_is_audited(world, login):
    response = login(world.owner).post(settings_url(), valid(scan_windows="Mon-Fri 20:00-06:00\nSat-Sun all day"))
    assert response.status_code == 302
    world.org.refresh_from_db()
    assert world.org.scan_windows == [{"days": [0, 1, 2, 3, 4], "start": "20:00", "end": "06:00"},
                                      {"days": [5, 6], "start": "00:00", "end": "24:00"}]
    event = AuditEvent.objects.get(verb="organization.settings_changed")
    assert event.changes["scan_windows"][0] == []
    page = login(world.owner).get(settings_url())
    assert b"Mon-Fri 20:00-06:00\nSat-Sun all day" in page.content


@pytest.mark.parametrize("text, message", [
    ("Mon-Fri 20:00-20:00", b"the end equals the start"),
    ("Mon-Fri 25:00-06:00", b"not a time of day"),
    ("Mon-Fri 8pm-6am", b"not HH:MM"),
])
def test_a_malformed_scan_window_is_refused_and_nothing_changes(world, login, text, message):
    response = login(world.owner).post(settings_url(), valid(scan_windows=text))
    assert response.status_code == 400 and message in response.content
    world.org.refresh_from_db()
    assert world.org.scan_windows == [] and not AuditEvent.objects.filter(verb="organization.settings_changed").exists()


def test_the_schedule_preview_says_which_runs_wait_for_the_window(world, login):
    response = login(world.owner).get(reverse("orgs:schedule_preview", args=["acme"]),
                                      {"schedule_crontab": "0 12 * * *", "schedule_timezone": "UTC",
                                       "scan_windows": "Mon-Sun 20:00-06:00"})
    assert response.status_code == 200
    assert response.content.count(b"outside the scan window: waits until") == 5
    assert b"20:00" in response.content and b"Scan windows: Mon-Sun 20:00-06:00" in response.content


def test_a_run_inside_the_window_is_not_marked(world, login):
    response = login(world.owner).get(reverse("orgs:schedule_preview", args=["acme"]),
                                      {"schedule_crontab": "0 22 * * *", "schedule_timezone": "UTC",
                                       "scan_windows": "Mon-Sun 20:00-06:00"})
    assert b"outside the scan window" not in response.content


def test_the_settings_page_lists_the_zones_windows_and_budgets(world, login):
    Zone.objects.create(org=world.org, name="branch", scan_windows=[{"days": [5, 6], "start": "00:00", "end": "24:00"}],
                        max_new_connections_per_second=200)
    Zone.objects.create(org=world.other_org, name="elsewhere", max_new_connections_per_second=7)
    page = login(world.admin).get(settings_url())
    assert b"Sat-Sun all day" in page.content and b"200 a second" in page.content
    assert b"elsewhere" not in page.content
