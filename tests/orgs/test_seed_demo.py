"""seed_demo: everything the console's pages need, the way into the Django admin, and idempotent."""

import pytest
from django.core.management import call_command

from nodes.models import Node
from orgs.models import ApiToken, Invitation

pytestmark = pytest.mark.django_db


def test_seed_demo_prints_the_credentials_and_how_to_reach_the_admin(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "user: demo  password: " in out
    assert "python manage.py createsuperuser" in out and "/admin/" in out


def test_seed_demo_gives_every_console_page_something_to_show_and_runs_twice(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    assert Node.objects.filter(org__slug="demo").count() == 6
    # The node the demo lab does not serve: the first session opens an intervention for it.
    assert Node.objects.filter(org__slug="demo", address="127.0.10.6").exists()
    assert Invitation.objects.pending().filter(org__slug="demo").count() == 1
    assert ApiToken.objects.filter(org__slug="demo", name="demo-ci").count() == 1
    assert "createsuperuser" in capsys.readouterr().out
