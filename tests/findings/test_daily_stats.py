"""The findings' daily rollup: today's row from snapshots, due dates and the day's events; past days rebuilt."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from nodes.models import NodeSnapshot
from scans.findings.daily_stats import finding_daily_stats_backfill, finding_daily_stats_refresh
from scans.findings.imports import findings_import
from scans.findings.triage import finding_triage
from scans.models import Finding, FindingDailyStats, FindingEvent
from scans.tasks import finding_daily_stats_refresh_task
from tests.factories import FindingFactory, NodeFactory, ScanSessionFactory
from tests.findings.conftest import nuclei_result

NOW = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def today_row(org):
    return FindingDailyStats.objects.get(org=org, day=NOW.date())


def test_todays_row_counts_open_findings_as_the_snapshots_do_and_the_overdue_ones(world):
    node = NodeFactory(org=world.org)
    NodeSnapshot.objects.filter(node=node).update(critical=2, high=3, medium=4, low=5, info=6)
    FindingFactory(node=node, due_at=NOW - DAY)  # overdue
    FindingFactory(node=node, due_at=NOW + DAY)
    FindingFactory(node=node, due_at=None)  # no due date: outside the SLA's count
    FindingFactory(node=node, status=Finding.Status.FIXED, due_at=None)

    finding_daily_stats_refresh(org=world.org, now=NOW)

    row = today_row(world.org)
    assert (row.open_critical, row.open_high, row.open_medium, row.open_low, row.open_info) == (2, 3, 4, 5, 6)
    assert (row.sla_open, row.sla_overdue) == (2, 1)


def test_the_days_new_and_fixed_events_give_new_fixed_and_the_time_to_fix(world):
    node = NodeFactory(org=world.org)
    session = ScanSessionFactory(org=world.org, created_at=NOW - dt.timedelta(hours=2))
    yesterday = ScanSessionFactory(org=world.org, created_at=NOW - 2 * DAY)
    fixed = FindingFactory(node=node, severity="high", status=Finding.Status.FIXED, first_seen=NOW - 4 * DAY,
                           fixed_at=NOW - dt.timedelta(hours=1))
    new = FindingFactory(node=node, first_seen=NOW - dt.timedelta(hours=1))
    old = FindingFactory(node=node, first_seen=NOW - 2 * DAY)
    FindingEvent.objects.create(finding=fixed, session=session, kind="fixed", at=fixed.fixed_at)
    FindingEvent.objects.create(finding=new, session=session, kind="new", at=new.first_seen)
    FindingEvent.objects.create(finding=old, session=yesterday, kind="new", at=old.first_seen)  # another day
    other = FindingFactory(node=NodeFactory(org=world.other_org), first_seen=NOW)
    FindingEvent.objects.create(finding=other, session=ScanSessionFactory(org=world.other_org, created_at=NOW),
                                kind="new", at=NOW - dt.timedelta(minutes=5))

    finding_daily_stats_refresh(org=world.org, now=NOW)

    row = today_row(world.org)
    assert (row.new, row.fixed, row.fixed_high) == (1, 1, 1)
    assert row.fix_seconds_high == int((4 * DAY - dt.timedelta(hours=1)).total_seconds())


def test_refreshing_twice_rewrites_the_same_row(world):
    node = NodeFactory(org=world.org)
    NodeSnapshot.objects.filter(node=node).update(high=1)
    finding_daily_stats_refresh(org=world.org, now=NOW)
    NodeSnapshot.objects.filter(node=node).update(high=7)

    finding_daily_stats_refresh(org=world.org, now=NOW + dt.timedelta(hours=1))

    assert FindingDailyStats.objects.filter(org=world.org).count() == 1
    assert today_row(world.org).open_high == 7


def test_the_backfill_rebuilds_past_days_from_first_seen_and_fixed_dates(world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, severity="critical", first_seen=NOW - 5 * DAY)
    FindingFactory(node=node, severity="critical", first_seen=NOW - 4 * DAY, status=Finding.Status.FIXED,
                   fixed_at=NOW - 2 * DAY)
    FindingFactory(node=node, severity="low", first_seen=NOW - 3 * DAY, due_at=NOW - 2 * DAY)
    FindingFactory(node=node, severity="low", first_seen=NOW - 3 * DAY, status=Finding.Status.FALSE_POSITIVE)

    written = finding_daily_stats_backfill(org=world.org, days=6, now=NOW)

    assert written == 6
    rows = {r.day: r for r in FindingDailyStats.objects.filter(org=world.org)}
    day = lambda n: (NOW - n * DAY).date()  # noqa: E731
    assert [rows[day(n)].open_critical for n in (6, 5, 4, 3, 2, 1)] == [0, 1, 2, 2, 1, 1]
    assert [rows[day(n)].open_low for n in (6, 5, 4, 3, 2, 1)] == [0, 0, 0, 1, 1, 1]
    assert [rows[day(n)].new for n in (5, 4, 3)] == [1, 1, 2]
    assert (rows[day(2)].fixed_critical, rows[day(2)].fix_seconds_critical) == (1, 2 * 86400)
    # The low finding is due two days ago: within its SLA the day it appeared, overdue since.
    assert [(rows[day(n)].sla_open, rows[day(n)].sla_overdue) for n in (3, 2, 1)] == [(1, 0), (1, 1), (1, 1)]
    assert NOW.date() in rows  # today, live


def test_the_backfill_keeps_days_written_live_unless_told_to_replace_them(world):
    node = NodeFactory(org=world.org)
    FindingFactory(node=node, severity="high", first_seen=NOW - 3 * DAY)
    FindingDailyStats.objects.create(org=world.org, day=(NOW - DAY).date(), open_high=40)

    finding_daily_stats_backfill(org=world.org, days=2, now=NOW)
    assert FindingDailyStats.objects.get(org=world.org, day=(NOW - DAY).date()).open_high == 40

    finding_daily_stats_backfill(org=world.org, days=2, now=NOW, replace=True)
    assert FindingDailyStats.objects.get(org=world.org, day=(NOW - DAY).date()).open_high == 1


def test_the_backfill_command_refuses_a_negative_number_of_days_and_an_unknown_organization(world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--days"):
        call_command("finding_stats_backfill", "--days", "-1")
    with pytest.raises(CommandError, match="nope"):
        call_command("finding_stats_backfill", "--org", "nope")
    assert not FindingDailyStats.objects.exists()


def test_an_import_writes_todays_row_after_it_commits(world, tmp_path, django_capture_on_commit_callbacks):
    path = tmp_path / "scan.jsonl"
    path.write_text("".join(json.dumps(nuclei_result("127.0.60.1", t, severity="high")) + "\n" for t in ("a", "b")))

    with django_capture_on_commit_callbacks() as callbacks:
        findings_import(org=world.org, fmt="nuclei", path=path)
    assert not FindingDailyStats.objects.filter(org=world.org).exists()
    assert callbacks  # the refresh, queued for a worker once the import is committed
    finding_daily_stats_refresh_task(org_id=world.org.pk)

    row = FindingDailyStats.objects.get(org=world.org, day=timezone.now().date())
    assert (row.new, row.open_high) == (2, 2)


def test_the_refresh_task_writes_every_organizations_row(world):
    assert finding_daily_stats_refresh_task() == 2
    assert FindingDailyStats.objects.filter(org__in=[world.org, world.other_org]).count() == 2


def test_triage_queues_one_refresh_per_organization_after_commit(world, django_capture_on_commit_callbacks):
    node = NodeFactory(org=world.org)
    first, second = FindingFactory(node=node), FindingFactory(node=node)
    with django_capture_on_commit_callbacks() as once:
        finding_triage(finding=first, status=Finding.Status.FALSE_POSITIVE, by=world.analyst, reason="lab")
    with django_capture_on_commit_callbacks() as again:
        finding_triage(finding=second, status=Finding.Status.FALSE_POSITIVE, by=world.analyst, reason="lab")

    assert len(again) == len(once) - 1  # the same callbacks, less the coalesced refresh
