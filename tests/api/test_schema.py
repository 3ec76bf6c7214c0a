"""schemathesis against the live schema at /api/v1/schema/, with a read_write token.

Every operation, with generated parameters and bodies: no 5xx, and every response (its
status, content type and body) as the schema says. Bounded by ``max_examples`` so the
run stays well under a minute.

The operations that take a node address or a webhook URL resolve host names through the
scope guard; here the guard's resolver knows ``localhost`` alone, so a generated name never
becomes a DNS query leaving the machine (it is refused as not resolving, a 400 or a refused row).
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from interventions.models import Intervention
from orgs import scope
from orgs.models import ApiToken
from orgs.services import api_token_create
from scans.models import ImportRequest
from tests.factories import FindingFactory, NodeFactory, ScanJobFactory, ScanSessionFactory

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def loopback_resolver(hostname: str) -> list[str]:
    if hostname == "localhost":
        return ["127.0.0.1"]
    raise OSError(f"{hostname} is not a name this test resolves")


@pytest.fixture
def live_schema(world, settings, tmp_path, monkeypatch):
    monkeypatch.setattr(scope, "_getaddrinfo", loopback_resolver)
    settings.WATCHPOST_API_THROTTLE_RATE = "off"
    settings.MEDIA_ROOT = tmp_path
    settings.ALLOWED_HOSTS = ["localhost"]  # schemathesis's WSGI client sends Host: localhost
    # Real rows, so lists and details return bodies the schema must describe.
    node = NodeFactory(org=world.org, address="127.0.50.1", tags=["prod"])
    session = ScanSessionFactory(org=world.org, stage_timings={"discovery": {"started_at": "2026-11-30T21:00:00Z"}})
    job = ScanJobFactory(session=session, node=node)
    FindingFactory(node=node, severity="high", cve_ids=["CVE-2024-6387"], port=22, cvss_score="7.5")
    Intervention.objects.create(org=world.org, kind=Intervention.Kind.JOB_EXHAUSTED, subject=f"job:{job.pk}",
                                title="tls failed", job=job, session=session, node=node, context={"attempts": 3})
    ImportRequest.objects.create(org=world.org, format="nuclei", filename="n.jsonl", counts={"new": 1})
    # As Django's test client does: a request must not close the test's connection (its
    # transaction holds the rows above), which close_old_connections does inside a transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(world):
    _, key = api_token_create(org=world.org, name="schemathesis", access=ApiToken.Access.READ_WRITE)
    return {"Authorization": f"Bearer {key}"}


def test_every_operation_answers_as_the_schema_says(live_schema, bearer):
    # schemathesis's Python API, one Hypothesis run per operation (its pytest loader for
    # lazily built schemas does not run under pytest 9); a failure names its operation.
    tested = []
    for result in live_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=20, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(headers=bearer, checks=CHECKS)

        run()
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert len(tested) >= 20, tested
