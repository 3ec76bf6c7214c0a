"""Where the importer fixtures this suite wrote live (tests/fixtures/<format>/)."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture(relative: str) -> Path:
    return FIXTURES / relative
