"""The small world every test starts from: org A with an owner, an analyst and a viewer; an outsider in org B."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import pytest

from orgs.models import Role
from scans.lab import Lab
from scans.scanners.base import ScanContext
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

PASSWORD = "correct horse battery staple"


def pytest_configure(config):
    from django.conf import settings

    # Real hashing costs ~0.3 s per user; tests make dozens of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    org: object
    other_org: object
    owner: object
    admin: object
    analyst: object
    viewer: object
    outsider: object


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: throttle counters and replay memories are per test."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def world(db) -> World:
    org = OrganizationFactory(name="Acme", slug="acme", scope_networks=["127.0.0.0/8"])
    other = OrganizationFactory(name="Globex", slug="globex")
    people = {}
    for role in (Role.OWNER, Role.ADMIN, Role.ANALYST, Role.VIEWER):
        user = UserFactory(username=f"acme-{role}")
        MembershipFactory(user=user, org=org, role=role)
        people[str(role)] = user
    outsider = UserFactory(username="globex-owner")
    MembershipFactory(user=outsider, org=other, role=Role.OWNER)
    return World(org=org, other_org=other, outsider=outsider, **people)


@pytest.fixture
def login(client):
    """Log a user into the test client: ``login(world.viewer)``."""

    def _login(user):
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def lab():
    """Real services on loopback addresses, stopped after the test."""
    with Lab() as running:
        yield running


@pytest.fixture(scope="module")
def module_lab():
    with Lab() as running:
        yield running


@pytest.fixture
def fast():
    """Short timeouts: everything answers from loopback in milliseconds, so only silence costs time."""
    return ScanContext(connect_timeout=0.5, read_timeout=0.6, extra={"banner_timeout": 0.3})


@pytest.fixture
def catalog(db):
    """The CVE catalog loaded from the project's fixture of real NVD records."""
    from scans.cve.catalog import CVE_FIXTURE, cve_catalog_import

    return cve_catalog_import(paths=[CVE_FIXTURE])


@pytest.fixture
def statements(monkeypatch):
    """Every statement sent to PostgreSQL, whoever's cursor sends it (Django's, or a server-bound one)."""
    sent: list[str] = []

    def counted(method):
        def send(self, query, *args, **kwargs):
            sent.append(str(query))
            return method(self, query, *args, **kwargs)
        return send

    for name in ("execute", "executemany"):
        monkeypatch.setattr(psycopg.Cursor, name, counted(getattr(psycopg.Cursor, name)))
    return sent
