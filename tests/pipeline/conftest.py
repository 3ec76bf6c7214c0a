"""Pipeline tests run the real services inline (no broker) against lab nodes on loopback."""

from __future__ import annotations

import pytest

from scans.lab.services import start_node
from scans.models import ScanProfile
from scans.pipeline.sessions import session_start
from tests import inline

# The lab's usual ports: discovery scans only these, so a session takes a second, not a minute.
LAB_PORTS = "80,6379,8545,9999"


@pytest.fixture
def quick_profile(db):
    return ScanProfile.objects.create(
        org=None, slug="quick", name="Quick", scanners=["http", "exposure"], ports=LAB_PORTS,
        time_budget_seconds=60, job_timeout_seconds=3,
        options={"context": {"connect_timeout": 0.5, "read_timeout": 0.5}, "max_attempts": 2},
    )


@pytest.fixture
def lab_nodes(lab):
    """Serve weak services on 127.0.60.1..n; returns the addresses."""

    def _serve(count: int = 2, kinds=("http", "redis"), first: int = 1) -> list[str]:
        addresses = [f"127.0.60.{first + i}" for i in range(count)]
        for address in addresses:
            start_node(lab, address, kinds)
        return addresses

    return _serve


@pytest.fixture
def run_inline(settings):
    settings.WATCHPOST_RETRY_BACKOFF_SECONDS = 0

    def _run(**kwargs):
        session = inline.run_inline(session_start, **kwargs)
        session.refresh_from_db()
        return session

    return _run


@pytest.fixture
def impatient_profile(quick_profile):
    """The quick profile, but an HTTP job gets less time than one read takes: a silent port overruns it."""
    quick_profile.options = {"context": {"connect_timeout": 0.5, "read_timeout": 1.0}, "max_attempts": 2,
                             "timeouts": {"discovery": 20, "http": 0.6}}
    quick_profile.save()
    return quick_profile
