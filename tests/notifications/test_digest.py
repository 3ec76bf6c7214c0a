"""The daily digest: one e-mail per member with something assigned and due, overdue first, once a day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from orgs.models import Membership
from orgs.schedules import periodic_tasks_setup
from reports.notifications.digest import digest_for, digests_send
from scans.models import Finding
from tests.factories import FindingFactory, MembershipFactory, NodeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def assigned(world):
    """Findings of acme assigned to the analyst: overdue, due soon, due later, closed, undated."""
    now = timezone.now()
    node = NodeFactory(org=world.org, address="127.0.61.1")

    def make(title, days, **kwargs):
        return FindingFactory(node=node, title=title, assignee=kwargs.pop("assignee", world.analyst),
                              due_at=now + timedelta(days=days) if days is not None else None, **kwargs)

    return {
        "soon": make("Due in three days", 3, severity="high", port=22),
        "late": make("Overdue by five days", -5, severity="critical"),
        "later": make("Due in a month", 30),
        "fixed": make("Fixed already", -9, status=Finding.Status.FIXED),
        "undated": make("No due date", None),
        "viewer's": make("The viewer's own", 1, assignee=world.viewer),
    }


def test_a_members_digest_lists_what_is_assigned_to_them_and_due_overdue_first(world, assigned, settings):
    settings.WATCHPOST_BASE_URL = "https://watchpost.lab.internal"

    assert digests_send() == 2  # the analyst and the viewer

    [message] = [m for m in mail.outbox if m.to == ["acme-analyst@example.test"]]
    assert message.subject == "[Watchpost] Acme: your findings, 1 overdue and 1 due within 7 days"
    body = message.body
    assert body.index("Overdue (1)") < body.index("Overdue by five days") < body.index("Due within 7 days (1)") \
        < body.index("Due in three days")
    assert "[CRITICAL] Overdue by five days on 127.0.61.1, overdue by 5 days" in body
    assert f"https://watchpost.lab.internal/o/acme/findings/{assigned['late'].pk}/" in body
    assert "127.0.61.1:22" in body
    for absent in ("Due in a month", "Fixed already", "No due date", "The viewer's own"):
        assert absent not in body
    assert "https://watchpost.lab.internal/o/acme/settings/notifications/digest/" in body


def test_a_member_with_nothing_due_gets_no_email(world, assigned):
    digests_send()
    assert sorted(m.to[0] for m in mail.outbox) == ["acme-analyst@example.test", "acme-viewer@example.test"]


def test_the_digest_goes_once_a_day_however_often_it_runs(world, assigned):
    assert digests_send() == 2
    assert digests_send() == 0
    assert len(mail.outbox) == 2
    tomorrow = timezone.now() + timedelta(days=1)
    assert digests_send(now=tomorrow) == 2


def test_a_member_who_opted_out_gets_none(world, assigned):
    Membership.objects.filter(user=world.analyst, org=world.org).update(digest_enabled=False)
    digests_send()
    assert [m.to for m in mail.outbox] == [["acme-viewer@example.test"]]


def test_a_member_of_two_organizations_gets_one_digest_for_each(world, assigned):
    MembershipFactory(user=world.analyst, org=world.other_org)
    FindingFactory(node=NodeFactory(org=world.other_org), title="Globex's late one", assignee=world.analyst,
                   due_at=timezone.now() - timedelta(days=1))
    digests_send()
    to_analyst = sorted(m.subject for m in mail.outbox if m.to == ["acme-analyst@example.test"])
    assert to_analyst == ["[Watchpost] Acme: your findings, 1 overdue and 1 due within 7 days",
                          "[Watchpost] Globex: your findings, 1 overdue"]


def test_the_digest_reads_the_same_few_rows_however_many_findings_are_not_due(world, assigned,
                                                                              django_assert_max_num_queries):
    node = NodeFactory(org=world.org)
    FindingFactory.create_batch(30, node=node, assignee=world.analyst,
                                due_at=timezone.now() + timedelta(days=60))
    membership = Membership.objects.select_related("org", "user").get(user=world.analyst, org=world.org)
    with django_assert_max_num_queries(1):
        digest = digest_for(membership=membership)
    assert digest.total == 2


def test_the_beat_row_runs_the_digests_daily_on_the_reports_queue(db):
    periodic_tasks_setup(watchdog_seconds=60)
    row = PeriodicTask.objects.get(name="watchpost: notification digests")
    assert row.task == "reports.tasks.notification_digests_send" and row.queue == "reports"
    assert (row.crontab.hour, row.crontab.minute) == ("6", "50") and row.enabled
