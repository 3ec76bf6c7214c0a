import pytest

from scans.lab import Lab
from scans.scanners.base import ScanContext


@pytest.fixture
def lab():
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
