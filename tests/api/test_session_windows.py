"""Scan windows over the API: an owner's override, refused to tokens and analysts, and a held session's state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orgs.models import AuditEvent
from scans.models import ScanSession
from tests.factories import NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def test_a_held_session_says_until_when(world, session_api):
    opens = timezone.now().replace(microsecond=0) + timedelta(hours=3)
    session = ScanSessionFactory(org=world.org, status=ScanSession.Status.RUNNING, window_waiting_until=opens,
                                 window_paused=True)
    body = session_api(world.viewer).get(f"/api/v1/sessions/{session.pk}/").json()
    assert body["window_paused"] is True and body["window_override"] is False
    assert body["window_waiting_until"].startswith(opens.strftime("%Y-%m-%dT%H"))


def test_an_owner_overrides_the_window_over_the_api(world, session_api):
    NodeFactory(org=world.org)
    response = session_api(world.owner).post("/api/v1/sessions/", {"outside_window": True}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["window_override"] is True
    assert AuditEvent.objects.filter(verb="session.window_overridden").count() == 1


def test_a_token_or_an_analyst_may_not_override_the_window_over_the_api(world, api, session_api):
    NodeFactory(org=world.org)
    assert api().post("/api/v1/sessions/", {"outside_window": True}, format="json").status_code == 403
    assert session_api(world.analyst).post("/api/v1/sessions/", {"outside_window": True},
                                           format="json").status_code == 403
    assert not ScanSession.objects.exists()


def test_an_override_that_is_not_a_boolean_is_refused(world, session_api):
    response = session_api(world.owner).post("/api/v1/sessions/", {"outside_window": "sometimes"}, format="json")
    assert response.status_code == 400 and "outside_window" in response.json()["errors"]
    assert not ScanSession.objects.exists()
