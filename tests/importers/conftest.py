from pathlib import Path

import pytest

from scans.importers.base import get_importer

# The samples live beside the checkout (shared/samples), never inside the project.
SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"third-party sample files not found at {SAMPLES.resolve()} (shared/samples beside the repo)")
    return SAMPLES


@pytest.fixture
def parse(samples):
    """parse("nmap", "nmap/nmap_1port.xml") -> ImportResult of that sample."""

    def run(importer: str, relative: str, **kwargs):
        return get_importer(importer).parse(samples / relative, **kwargs)

    return run
