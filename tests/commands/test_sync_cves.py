"""sync_cves and import_cves on the command line, the daily beat task, and their feed state."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from orgs.schedules import NVD_SYNC_NAME, NVD_SYNC_TASK, periodic_tasks_setup
from scans.cve.catalog import CVE_FIXTURE
from scans.lab.nvd_api import NvdApiServer, RecordCorpus, generated_cve
from scans.models import CveRecord, Feed, FeedState
from scans.tasks import nvd_sync_task


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def nvd(settings):
    corpus = RecordCorpus([generated_cve(i, last_modified=datetime(2025, 1, 1, tzinfo=UTC)) for i in range(3)])
    with NvdApiServer(corpus) as server:
        settings.WATCHPOST_NVD_API_URL = server.url
        settings.WATCHPOST_NVD_MIRROR_UNLIMITED = True
        yield server


def test_off_a_terminal_it_writes_a_progress_line_per_page_then_the_counts_and_ids(db, nvd):
    out = io.StringIO()

    call_command("sync_cves", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("nvd: full catalog: 3/3 records, page 1")
    assert "\r" not in out.getvalue()
    assert lines[1].startswith("NVD full sync through ")
    assert "3 created, 0 updated, 0 unchanged" in lines[1]
    assert lines[2] == "Changed CVE ids (3):"
    assert {line.strip().split()[0] for line in lines[3:]} == {r["id"] for r in nvd.corpus.records}


def test_on_a_terminal_it_draws_a_progress_bar(db, nvd):
    out = Terminal()

    call_command("sync_cves", stdout=out)

    text = out.getvalue()
    assert "\rfull catalog [##############################] 100% 3/3\033[K" in text
    assert "nvd: full catalog" not in text


def test_a_failed_sync_exits_non_zero_with_the_reason_and_records_it(db, nvd, settings):
    settings.WATCHPOST_NVD_MAX_ATTEMPTS = 1
    nvd.fail(503)

    with pytest.raises(CommandError, match="NVD feed, full catalog, page startIndex=0: no usable answer.*resumes"):
        call_command("sync_cves", stdout=io.StringIO())

    assert "HTTP 503" in FeedState.objects.get(feed=Feed.NVD).last_error


def test_the_daily_task_calls_the_same_sync(db, nvd):
    summary = nvd_sync_task()

    assert (summary["created"], summary["changed"]) == (3, 3)
    assert FeedState.objects.get(feed=Feed.NVD).records == 3


def test_a_failed_daily_task_reports_the_reason_instead_of_retrying(db, nvd, settings):
    settings.WATCHPOST_NVD_MAX_ATTEMPTS = 1
    nvd.fail(500)

    summary = nvd_sync_task()

    assert "HTTP 500" in summary["error"]


def test_periodic_setup_registers_the_daily_nvd_sync_once(db):
    periodic_tasks_setup(watchdog_seconds=30)
    periodic_tasks_setup(watchdog_seconds=30)

    task = PeriodicTask.objects.get(name=NVD_SYNC_NAME)
    assert task.task == NVD_SYNC_TASK and task.enabled
    assert (task.crontab.minute, task.crontab.hour) == ("47", "2")


def test_import_cves_records_the_feed_state_and_lists_the_changed_ids(db, tmp_path):
    path = tmp_path / "nvd.json.gz"
    path.write_bytes(gzip.compress(CVE_FIXTURE.read_bytes()))
    out = io.StringIO()

    call_command("import_cves", str(path), "--list-ids", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "CVE records: 35 created, 0 updated, 0 unchanged"
    assert len(lines[1:]) == 35 and "  CVE-2024-6387" in lines
    feed = FeedState.objects.get(feed=Feed.NVD)
    assert feed.records == 35 and feed.last_success_at and feed.last_error == ""
    assert feed.source_date == CveRecord.objects.order_by("-last_modified").first().last_modified


def test_a_refused_import_file_is_the_feeds_last_error(db, tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps({"format": "NVD_CVE", "version": "2.0", "vulnerabilities": [{"cve": {}}]}))

    with pytest.raises(CommandError, match="cut.json"):
        call_command("import_cves", str(path))

    feed = FeedState.objects.get(feed=Feed.NVD)
    assert "cut.json" in feed.last_error and "missing 'id'" in feed.last_error
    assert feed.last_success_at is None and not CveRecord.objects.exists()
