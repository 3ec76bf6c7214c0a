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


def test_seed_demo_keeps_a_new_password_in_a_login_file_only_its_owner_can_read(tmp_path, capsys):
    import stat

    from scans.management.commands.seed_demo import login_file_read

    login = tmp_path / "var" / "demo-login"
    call_command("seed_demo", "--login-file", str(login))
    printed = capsys.readouterr().out.split("password: ")[1].split()[0]

    assert login_file_read(login) == ("demo", printed)
    assert stat.S_IMODE(login.stat().st_mode) == 0o600
    call_command("seed_demo", "--login-file", str(login))  # the owner exists: no new password, the file stays
    assert login_file_read(login) == ("demo", printed)


def test_the_demo_lab_prints_the_login_last_once_the_console_answers_and_the_first_session_ended(
        tmp_path, monkeypatch, capsys):
    import threading

    from scans.management.commands import demo_lab
    from scans.management.commands.seed_demo import login_file_write
    from scans.models import ScanSession

    call_command("seed_demo")
    session = ScanSession.objects.create(org=Node.objects.get(address="127.0.10.1").org, trigger="cli",
                                         correlation_id="t", status=ScanSession.Status.SUCCEEDED, findings_new=47)
    login_file_write(tmp_path / "demo-login", "demo", "s3cret-pass")
    monkeypatch.setattr(demo_lab, "_console_answers", lambda: True)
    capsys.readouterr()

    demo_lab.Command()._announce(tmp_path / "demo-login", session, threading.Event())
    box = capsys.readouterr().out.strip().splitlines()

    assert box[0] == box[-1] and set(box[0]) == {"+", "-"}
    assert "http://127.0.0.1:8000/" in box[1]
    assert "user: demo   password: s3cret-pass" in box[2]
    assert "first demo session succeeded, 47 new findings" in box[3]
    assert len({len(line) for line in box}) == 1


def test_without_a_login_file_the_box_says_how_to_get_a_new_password(tmp_path, monkeypatch, capsys):
    import threading

    from scans.management.commands import demo_lab

    monkeypatch.setattr(demo_lab, "_console_answers", lambda: True)
    demo_lab.Command()._announce(tmp_path / "missing", None, threading.Event())

    assert "seed_demo --reset-password" in capsys.readouterr().out
