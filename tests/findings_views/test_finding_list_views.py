"""The findings list opens on open findings, every status one click away; new and reopened ones say so; on a phone
the rows are cards, the filters fold behind one button and the bulk bar counts the selection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import FindingFactory, NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db


def url(name="finding_list", *args):
    return reverse(f"scans:{name}", args=["acme", *args])


@pytest.fixture
def node(world):
    return NodeFactory(org=world.org, name="web-1")


def _titles(response) -> list[str]:
    return sorted(row["title"] for row in response.context["rows"])


def test_the_list_opens_on_open_findings_and_all_is_one_click_away(world, login, node):
    FindingFactory(node=node, title="Open")
    FindingFactory(node=node, title="Fixed", status="fixed")
    FindingFactory(node=node, title="Noise", status="false_positive", triage_reason="x")
    client = login(world.viewer)
    response = client.get(url())
    assert _titles(response) == ["Open"] and response.context["tab"] == "open"
    content = response.content.decode()
    assert 'href="/o/acme/findings/?status=all"' in content and '<option value="open" selected>' in content
    everything = client.get(url(), {"status": "all"})
    assert _titles(everything) == ["Fixed", "Noise", "Open"] and everything.context["tab"] == "all"
    assert _titles(client.get(url(), {"status": ""})) == ["Fixed", "Noise", "Open"]
    assert _titles(client.get(url(), {"status": "fixed"})) == ["Fixed"]


def test_every_matching_finding_of_the_default_list_means_the_open_ones(world, login, node):
    FindingFactory(node=node, title="Open")
    content = login(world.analyst).get(url()).content.decode()
    assert '<input type="hidden" name="filter" value="status=open">' in content


def test_a_sessions_fixed_findings_still_show_from_its_link(world, login, node):
    session = ScanSessionFactory(org=world.org)
    fixed = FindingFactory(node=node, title="Fixed by the session", status="fixed")
    fixed.events.create(kind="fixed", session=session, from_status="open", to_status="fixed")
    response = login(world.viewer).get(url(), {"session": session.pk, "change": "fixed"})
    assert _titles(response) == ["Fixed by the session"]


def test_new_and_reopened_open_findings_are_labelled(world, login, node):
    FindingFactory(node=node, title="Seen once", times_seen=1)
    FindingFactory(node=node, title="Back again", times_seen=4, reopened_count=1)
    FindingFactory(node=node, title="Old news", times_seen=4)
    content = login(world.viewer).get(url()).content.decode()
    rows = {title: content.split(title, 1)[1].split("</tr>", 1)[0] for title in ("Seen once", "Back again", "Old news")}
    assert "facet-new" in rows["Seen once"] and "facet-reopened" in rows["Back again"]
    assert "facet" not in rows["Old news"]


def test_a_row_shows_its_due_date(world, login, node):
    due = timezone.now() + timedelta(days=5)
    FindingFactory(node=node, title="Due soon", due_at=due)
    row = login(world.viewer).get(url()).content.decode().split("Due soon", 1)[1].split("</tr>", 1)[0]
    due_cell = row.split('data-label="Due">', 1)[1].split("</td>", 1)[0]
    assert f'<time datetime="{due.isoformat()}">{timezone.localtime(due):%Y-%m-%d}</time>' in due_cell


def test_on_a_phone_rows_are_cards_filters_fold_and_the_bulk_bar_counts_the_selection(world, login, node):
    FindingFactory(node=node, title="Open")
    content = login(world.analyst).get(url()).content.decode()
    assert '<table class="findings finding-cards"' in content
    assert '<input type="checkbox" id="filters-fold" class="fold-toggle">' in content
    assert '<form class="filters finding-filters fold"' in content
    assert 'data-bulk-bar="finding"' in content and "data-bulk-count" in content
    for label in ('data-label="Node"', 'data-label="Due"', 'class="col-status"', 'class="col-sev"'):
        assert label in content


def test_the_list_keeps_its_query_count_with_the_default_filter(world, login, node, django_assert_max_num_queries):
    for n in range(60):
        FindingFactory(node=node, status="open" if n % 3 else "fixed")
    client = login(world.analyst)
    with django_assert_max_num_queries(12):
        response = client.get(url())
    assert len(response.context["rows"]) == 40
