"""Probes and the request id that ties a request to its log lines."""

import json
import logging

import pytest

from config import health


def test_healthz_answers_ok_without_touching_the_database(client):
    # No django_db mark: any query would raise.
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_a_given_request_id_is_returned_in_the_response(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc")
    assert response["X-Request-ID"] == "abc"


def test_a_request_without_id_gets_a_fresh_one(client):
    first, second = client.get("/healthz")["X-Request-ID"], client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and first != second


def test_a_request_id_that_could_forge_log_lines_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID='abc"\n{"level":"critical"}')
    assert response["X-Request-ID"] != 'abc"\n{"level":"critical"}'
    assert len(response["X-Request-ID"]) == 32


def test_the_request_log_line_is_json_carrying_the_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="watchpost.request")
    client.get("/healthz", HTTP_X_REQUEST_ID="trace-me-123")
    record = [r for r in caplog.records if r.name == "watchpost.request"][-1]
    # Render it with the handler Django's LOGGING installed: what operators read.
    line = json.loads(logging.getLogger().handlers[0].formatter.format(record))
    assert line["request_id"] == "trace-me-123"
    assert line["event"] == "request" and line["path"] == "/healthz" and line["status"] == 200


@pytest.mark.django_db
def test_readyz_is_ok_when_database_broker_and_cache_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "cache": "ok"}


@pytest.mark.django_db
def test_readyz_answers_503_naming_the_broker_when_it_is_down(client, settings):
    from config.celery import app

    # Nothing listens on port 1 of loopback: a broker that is configured but stopped.
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["broker"]
    assert body["checks"]["broker"].startswith("failed:")
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_names_the_cache_when_it_fails(client, monkeypatch):
    def broken():
        raise ConnectionError("cache unreachable")

    monkeypatch.setitem(health.CHECKS, "cache", broken)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["cache"]


def test_probes_refuse_post(client):
    assert client.post("/healthz").status_code == 405
