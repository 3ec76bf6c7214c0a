"""``bench scan``'s identification coverage: every TCP service of the lab, discovered as ``scan`` would."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

# Services whose answers to a stranger carry no version: credentials demanded first (the protected
# twins, PostgreSQL before its startup is accepted), or a product that never sends one (Postfix's
# banner, Kafka, a registry, telnet, a kubelet's read-only port), or nothing of the product at all.
VERSION_NOT_ON_THE_WIRE = {
    "postgres", "redis-auth", "smtp", "kafka", "registry", "telnet", "bitcoin-auth", "cassandra-auth",
    "consul-acl", "elasticsearch-auth", "kafka-auth", "kubernetes-api-auth", "mosquitto-auth", "nomad-acl",
    "registry-auth",
}


@pytest.mark.django_db
def test_the_coverage_part_names_every_lab_service_whose_answer_carries_a_version():
    out = io.StringIO()
    call_command("bench", "scan", "--skip", "full", "--skip", "identify", "--skip", "profile", "--skip", "udp",
                 stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])

    assert set(summary["identify_unnamed"]) <= VERSION_NOT_ON_THE_WIRE
    assert summary["identify_named"] == summary["identify_services"] - len(summary["identify_unnamed"])
    assert summary["identify_coverage"] == round(summary["identify_named"] / summary["identify_services"], 3)
    assert "tarpit" not in out.getvalue()
