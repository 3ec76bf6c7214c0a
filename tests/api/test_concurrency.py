"""Concurrent requests, on real connections (one per thread): identical POSTs with one
Idempotency-Key start one session; two edits from the same version — one wins, the other
gets the current state."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from interventions.models import Intervention
from scans.models import Finding, ScanProfile, ScanSession
from scans.pipeline import dispatch
from tests.factories import FindingFactory, NodeFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _together(n: int, call):
    """Run ``call(i)`` in n threads released at the same instant; return the results in order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def run(i):
        try:
            # Queue the pipeline's work in this thread instead of publishing it to a broker.
            with dispatch.inline():
                barrier.wait(timeout=10)
                results[i] = call(i)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_concurrent_identical_posts_start_one_session(tokens, world):
    # The built-in profile comes from a data migration: an earlier transactional test's flush removes it.
    ScanProfile.objects.get_or_create(org=None, slug="light", defaults={"name": "Light", "scanners": ["exposure"]})
    responses = _together(4, lambda i: _client(tokens["read_write"]).post(
        "/api/v1/sessions/", {"profile": "light"}, format="json", HTTP_IDEMPOTENCY_KEY="same-key"))

    assert ScanSession.objects.filter(org=world.org).count() == 1
    session = ScanSession.objects.get(org=world.org)
    for response in responses:
        assert response.status_code == 202, response.content
        assert response.json()["id"] == session.pk


def test_two_triages_from_the_same_version_one_wins_the_other_sees_the_current_state(tokens, world):
    finding = FindingFactory(node=NodeFactory(org=world.org))
    bodies = [{"status": "false_positive", "reason": "first"}, {"status": "false_positive", "reason": "second"}]

    responses = _together(2, lambda i: _client(tokens["read_write"]).patch(
        f"/api/v1/findings/{finding.pk}/", bodies[i], format="json", HTTP_IF_MATCH='"1"'))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 412], [r.content for r in responses]
    loser = next(r for r in responses if r.status_code == 412).json()
    finding = Finding.objects.get(pk=finding.pk)
    assert finding.version == 2
    assert loser["current"]["version"] == 2 and loser["current"]["triage_reason"] == finding.triage_reason


def test_two_body_versioned_actions_one_wins_the_other_is_409(tokens, world):
    intervention = Intervention.objects.create(org=world.org, kind=Intervention.Kind.STAGE_STUCK, subject="s:1",
                                               title="stuck")
    actions = ["acknowledge", "dismiss"]

    responses = _together(2, lambda i: _client(tokens["read_write"]).post(
        f"/api/v1/interventions/{intervention.pk}/{actions[i]}/", {"version": 1}, format="json"))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.content for r in responses]
    loser = next(r for r in responses if r.status_code == 409).json()
    assert loser["current"]["version"] == 2
