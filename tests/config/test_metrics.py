"""/metrics: Prometheus text with request, queue, job, session, intervention and worker figures, behind a guard."""

import pytest
from django.urls import reverse
from django.utils import timezone

from interventions.models import Intervention
from scans.models import ScanJob, ScanSession, WorkerHeartbeat
from tests.factories import ScanJobFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def _scrape(client, **extra):
    return client.get(reverse("metrics"), REMOTE_ADDR=extra.pop("ip", "127.0.0.1"), **extra)


def test_metrics_are_prometheus_text_with_the_work_in_flight(client, world):
    session = ScanSessionFactory(org=world.org, status=ScanSession.Status.RUNNING)
    ScanJobFactory(session=session, status=ScanJob.Status.RUNNING)
    ScanJobFactory(session=session, status=ScanJob.Status.QUEUED, scanner="http")
    Intervention.objects.create(org=world.org, kind=Intervention.Kind.STAGE_STUCK, subject="s:1", title="stuck")
    WorkerHeartbeat.objects.create(hostname="celery@a", queues=["scans", "nodes"], seen_at=timezone.now())
    client.get(reverse("healthz"))

    response = _scrape(client)
    body = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert 'watchpost_jobs{status="running"} 1.0' in body
    assert 'watchpost_jobs{status="queued"} 1.0' in body
    assert 'watchpost_sessions{status="running"} 1.0' in body
    assert 'watchpost_interventions_open{kind="stage_stuck"} 1.0' in body
    assert 'watchpost_workers_alive{queue="scans"} 1.0' in body
    assert 'watchpost_workers_alive{queue="reports"} 0.0' in body
    assert 'watchpost_queue_depth{queue="scans"}' in body
    assert 'watchpost_http_requests_total{method="GET",status="200",view="healthz"}' in body
    assert 'watchpost_http_request_duration_seconds_bucket{le="0.1",view="healthz"}' in body


def test_metrics_refuse_an_address_outside_the_allowed_networks(client, db):
    assert _scrape(client, ip="203.0.113.9").status_code == 403


def test_with_a_metrics_token_only_a_scrape_bearing_it_is_answered(client, db, settings):
    settings.WATCHPOST_METRICS_TOKEN = "scrape-secret"
    assert _scrape(client).status_code == 403
    assert _scrape(client, HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert _scrape(client, HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


def test_metrics_refuse_writes(client, db):
    assert client.post(reverse("metrics"), REMOTE_ADDR="127.0.0.1").status_code == 405
