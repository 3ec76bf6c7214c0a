"""Discovery evidence on the node page reads as sentences, not as Python reprs (QA, issue 8)."""

import re

import pytest
from django.urls import reverse

from nodes.display import evidence_sentence
from scans.discovery.registry import Signature
from tests.factories import NodeFactory


def sentence(signature: Signature, **extra):
    return evidence_sentence({"probe": signature.probe or "fingerprint", "signature": signature.describe(), **extra})


def test_a_regex_signature_names_its_probe_once_and_shows_the_pattern_as_written():
    shown = sentence(Signature(weight=0.5, probe="http-root", regex=re.compile(r"^HTTP/1\.[01] \d{3} ")))
    assert shown["text"] == "The answer to the http-root probe matches"
    assert shown["code"] == r"^HTTP/1\.[01] \d{3} "


def test_a_service_signature_lists_its_services_in_words():
    shown = sentence(Signature(weight=0.3, services=("http", "https")))
    assert shown["text"] == "The service fingerprint says http or https" and "[" not in shown["text"]


def test_a_header_signature_names_the_header():
    shown = sentence(Signature(weight=0.4, probe="http-root", header=("Server", re.compile(r"nginx/\d"))))
    assert shown["text"] == "The Server header in the answer to the http-root probe matches"
    assert shown["code"] == r"nginx/\d"


def test_json_signatures_read_as_sentences():
    exists = sentence(Signature(weight=0.4, probe="rpc", json_path=("result", "version")))
    matches = sentence(Signature(weight=0.4, probe="rpc", json_path=("jsonrpc",),
                                 json_test=("matches", re.compile(r"^2\.0$"))))
    assert (exists["text"], exists["code"]) == ("In the JSON answer to the rpc probe, result.version is present", "")
    assert (matches["text"], matches["code"]) == ("In the JSON answer to the rpc probe, jsonrpc matches", r"^2\.0$")


def test_the_usual_port_reads_as_a_sentence():
    assert evidence_sentence({"signature": "usual port 6379", "weight": 0.2})["text"] == (
        "Answered on port 6379, a usual port of this protocol")


@pytest.mark.django_db
def test_the_node_page_shows_evidence_without_reprs(world, login):
    node = NodeFactory(org=world.org, state="up", protocols=["http"], discovery_evidence={"protocols": [{
        "protocol": "http", "port": 80, "confidence": 0.9, "tls": False, "version": "", "evidence": [
            {"probe": "http-root", "signature": Signature(weight=0.5, probe="http-root",
                                                          regex=re.compile(r"^HTTP/1\.[01] \d{3} ")).describe(),
             "matched": "HTTP/1.1 200", "weight": 0.5},
            {"probe": "fingerprint", "signature": Signature(weight=0.3, services=("http", "https")).describe(),
             "matched": "http", "weight": 0.3}]}]})

    content = login(world.viewer).get(reverse("nodes:detail", args=["acme", node.pk])).content.decode()

    assert "http-root: http-root" not in content and "http-root:" not in content
    assert r"\\." not in content and "[&#x27;http&#x27;" not in content and "in [" not in content
    assert r"<code>^HTTP/1\.[01] \d{3} </code>" in content and "http or https" in content


@pytest.mark.django_db
def test_the_bulk_hint_takes_its_example_from_the_first_scope_network(world, login):
    world.org.scope_networks = ["127.0.10.0/24", "10.9.0.0/16"]
    world.org.save(update_fields=["scope_networks"])

    content = login(world.analyst).get(reverse("nodes:bulk", args=["acme"])).content.decode()

    assert "127.0.10.1 web-1" in content and "127.0.0.5 web-1" not in content


@pytest.mark.django_db
def test_a_refused_row_gives_its_reason_without_repeating_refused(world, login, settings):
    settings.SCAN_ALLOWED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]

    response = login(world.analyst).post(reverse("nodes:bulk", args=["acme"]), {"text": "10.0.0.1\n"})

    why = response.content.decode().split('data-label="Why">')[1].split("</td>")[0]
    assert why.startswith("outside the organization") and "refused" not in why
