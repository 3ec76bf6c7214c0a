"""Fixtures shared by the scanner tests."""

from __future__ import annotations

import pytest

from scans.lab.tls import CertFactory, modern_server_context


@pytest.fixture(scope="module")
def tls_context():
    """A lab web server's TLS context: a modern configuration with a certificate for web.lab."""
    with CertFactory() as certs:
        yield modern_server_context(certs.issue("web.lab"))
