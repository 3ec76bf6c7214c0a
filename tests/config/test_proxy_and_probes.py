"""Deployment edges: which proxy headers are trusted, and how probes may ask."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def _setting(name: str, **env) -> str:
    """A setting as a fresh process reads it from the environment (settings are read once, at start)."""
    code = f"import django; django.setup(); from django.conf import settings; print(repr(settings.{name}))"
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "0",
               "SECRET_KEY": "x" * 50, **env}
    environ.pop("SECURE_PROXY_SSL_HEADER", None) if "SECURE_PROXY_SSL_HEADER" not in env else None
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_x_forwarded_proto_is_not_trusted_unless_a_setting_says_a_proxy_sets_it():
    assert _setting("SECURE_PROXY_SSL_HEADER") == "None"


def test_x_forwarded_proto_is_trusted_when_the_operator_says_a_proxy_sets_it():
    assert _setting("SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="1") == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.django_db
@pytest.mark.parametrize("probe", ["healthz", "readyz"])
def test_probes_answer_head_like_get(client, probe):
    get, head = client.get(reverse(probe)), client.head(reverse(probe))
    assert head.status_code == get.status_code
    assert head.content == b""


@pytest.mark.django_db
def test_probes_still_refuse_writes(client):
    assert client.post(reverse("healthz")).status_code == 405
