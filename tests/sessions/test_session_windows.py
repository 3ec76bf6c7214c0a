"""Starting a session outside the scan window (console and API), and what a held session's page and API say."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEvent
from scans.models import ScanSession
from tests.factories import NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def url(name, *args, slug="acme"):
    return reverse(f"scans:{name}", args=[slug, *args])


def test_an_owner_starts_a_session_now_outside_the_window_from_the_console_and_it_is_audited(world, login):
    NodeFactory(org=world.org)
    response = login(world.owner).post(url("session_new"), {"profile": "light", "scope": "all",
                                                            "outside_window": "on"})
    assert response.status_code == 302
    session = ScanSession.objects.get(org=world.org)
    assert session.window_override
    assert AuditEvent.objects.get(verb="session.window_overridden").actor == world.owner


def test_the_override_is_offered_to_owners_and_admins_only(world, login):
    assert b"outside the scan window" in login(world.admin).get(url("session_new")).content
    assert b"outside the scan window" not in login(world.analyst).get(url("session_new")).content


def test_an_analysts_override_is_not_taken(world, login):
    NodeFactory(org=world.org)
    login(world.analyst).post(url("session_new"), {"profile": "light", "scope": "all", "outside_window": "on"})
    assert not ScanSession.objects.get(org=world.org).window_override
    assert not AuditEvent.objects.filter(verb="session.window_overridden").exists()


def test_a_viewer_cannot_start_one_and_an_outsider_gets_a_404(world, login, client):
    assert login(world.viewer).post(url("session_new"), {"profile": "light", "scope": "all",
                                                         "outside_window": "on"}).status_code == 403
    client.logout()
    assert login(world.outsider).post(url("session_new"), {"profile": "light", "scope": "all",
                                                           "outside_window": "on"}).status_code == 404
    client.logout()
    assert client.post(url("session_new"), {"profile": "light", "scope": "all"}).status_code == 302  # to login
    assert not ScanSession.objects.exists()


def test_a_held_session_says_until_when_on_its_page_and_in_the_api(world, login):
    world.org.schedule_timezone = "Europe/Paris"
    world.org.save(update_fields=["schedule_timezone"])
    opens = timezone.now().replace(microsecond=0) + timedelta(hours=3)
    session = ScanSessionFactory(org=world.org, status=ScanSession.Status.RUNNING, window_waiting_until=opens,
                                 window_paused=True)
    page = login(world.viewer).get(url("session_detail", session.pk)).content.decode()
    local = opens.astimezone(ZoneInfo("Europe/Paris"))
    assert f"paused until {local:%a %d %b %Y, %H:%M}" in page
