"""The finding page says a CVE match's version range in words and shows evidence readably."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from scans.templatetags.findings import evidence, versions_in_words
from tests.factories import FindingFactory, NodeFactory


@pytest.mark.parametrize(("reason", "expected"), [
    ("zlib 1.2 is within (-inf, 1.12.1)", "zlib 1.2 is within the affected versions (before 1.12.1)"),
    ("x 2.1 is within [2.0, 2.4)", "x 2.1 is within the affected versions (from 2.0 up to but not including 2.4)"),
    ("x 2.1 is within [2.0, 2.4]", "x 2.1 is within the affected versions (from 2.0 up to and including 2.4)"),
    ("x 2.1 is outside (2.0, +inf)", "x 2.1 is outside the affected versions (after 2.0)"),
    ("x 3 is within [2.0, +inf)", "x 3 is within the affected versions (from 2.0 on)"),
    ("x 1 is within (-inf, 1.5]", "x 1 is within the affected versions (up to and including 1.5)"),
    ("x range (1.0, 2.0) cannot be read", "x range after 1.0 up to but not including 2.0 cannot be read"),
    ("every version of x is listed as affected", "every version of x is listed as affected"),
])
def test_a_version_range_is_said_in_words(reason, expected):
    assert versions_in_words(reason) == expected


def test_evidence_decodes_json_kept_as_text_and_lists_nested_values():
    html = str(evidence({"received": json.dumps([{"Id": "abc", "Names": ["/web"]}]), "port": 2375}))
    assert "\\&quot;" not in html and '\\"' not in html
    assert '<dl class="evidence-map"><dt>port</dt><dd>2375</dd><dt>received</dt><dd><ol class="evidence-list">' in html
    assert "<dt>Id</dt><dd><code>abc</code></dd>" in html


def test_long_evidence_values_are_cut_with_a_show_all():
    html = str(evidence({"banner": "x" * 1000, "items": list(range(30))}))
    assert "show all (1000 characters)" in html and "show all 30 items" in html
    assert html.count("<details") == 2


def test_evidence_escapes_what_the_tool_sent():
    html = str(evidence({"<b>": "<script>alert(1)</script>"}))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html


@pytest.mark.django_db
def test_the_finding_page_shows_the_range_in_words_and_the_evidence_readably(world, login):
    finding = FindingFactory(node=NodeFactory(org=world.org), match_reason="zlib 1.2 is within (-inf, 1.12.1)",
                             match_confidence=0.9, evidence={"received": json.dumps({"Id": "abc"})})
    content = login(world.viewer).get(reverse("scans:finding_detail", args=["acme", finding.pk])).content.decode()
    assert "before 1.12.1" in content and "(-inf" not in content
    assert "<dt>Id</dt>" in content


@pytest.mark.django_db
def test_an_accepted_risk_shows_its_expiry_date_with_the_relative_time_on_hover(world, login):
    from datetime import timedelta

    from django.utils import timezone

    until = timezone.now() + timedelta(days=40)
    finding = FindingFactory(node=NodeFactory(org=world.org), status="risk_accepted", triage_reason="VPN only",
                             triaged_at=timezone.now(), risk_accepted_until=until)
    content = login(world.viewer).get(reverse("scans:finding_detail", args=["acme", finding.pk])).content.decode()
    day = timezone.localtime(until).strftime("%Y-%m-%d")
    # Django's timeuntil joins number and unit with a no-break space.
    assert f">{day}</time>" in content and 'title="in 1\xa0month' in content
    assert "accepted until in " not in content
