"""sync_kev / sync_epss: each feed downloaded from a loopback server in its real format, retried on 429 and 5xx."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask

from scans.cve.feed_download import FeedDownloadError
from scans.cve.feed_sync import epss_sync, kev_sync
from scans.models import EpssScore, FeedState, KevEntry
from scans.tasks import epss_sync_task, feeds_staleness_check_task, kev_sync_task
from tests.feeds.files import epss_gzip, kev_bytes, kev_entry
from tests.feeds.server import FeedServer

pytestmark = pytest.mark.django_db

KEV_PATH = "/sites/default/files/feeds/known_exploited_vulnerabilities.json"
EPSS_ROWS = [("CVE-1999-0001", "0.01141", "0.77888"), ("CVE-2021-41773", "0.94432", "0.99961")]


@pytest.fixture
def server(settings):
    settings.WATCHPOST_FEED_BACKOFF_SECONDS = 0.01
    settings.WATCHPOST_FEED_RETRIES = 3
    settings.WATCHPOST_FEED_TIMEOUT_SECONDS = 5
    with FeedServer() as running:
        settings.WATCHPOST_KEV_URL = running.url + KEV_PATH
        settings.WATCHPOST_EPSS_URL = running.url + "/epss_scores-current.csv.gz"
        yield running


def test_the_kev_catalog_is_downloaded_and_stored(server):
    server.script[KEV_PATH] = [(200, {"Content-Type": "application/json"}, kev_bytes([kev_entry("CVE-2021-41773")]))]
    result = kev_sync()
    assert result.records == 1 and list(KevEntry.objects.values_list("pk", flat=True)) == ["CVE-2021-41773"]
    assert FeedState.objects.get(feed="kev").last_success_at is not None


def test_the_epss_current_file_is_followed_to_the_dated_one_and_stored(server):
    server.script["/epss_scores-current.csv.gz"] = [(302, {"Location": "/epss_scores-2026-12-06.csv.gz"}, b"")]
    server.script["/epss_scores-2026-12-06.csv.gz"] = [(200, {"Content-Type": "application/gzip"},
                                                        epss_gzip(EPSS_ROWS))]
    assert epss_sync().records == 2
    assert server.requests == ["/epss_scores-current.csv.gz", "/epss_scores-2026-12-06.csv.gz"]
    assert EpssScore.objects.get(pk="CVE-2021-41773").percentile == 0.99961


def test_a_429_and_a_503_are_retried_until_the_feed_answers(server):
    server.script["/epss_scores-current.csv.gz"] = [
        (429, {"Retry-After": "0"}, b"slow down"), (503, {}, b"busy"), (200, {}, epss_gzip(EPSS_ROWS))]
    assert epss_sync().records == 2
    assert len(server.requests) == 3


def test_a_feed_that_keeps_failing_gives_up_records_the_error_and_keeps_the_stored_data(server):
    server.script[KEV_PATH] = [(200, {}, kev_bytes([kev_entry("CVE-2021-41773")]))]
    kev_sync()
    server.script[KEV_PATH] = [(502, {}, b"bad gateway")]
    with pytest.raises(FeedDownloadError, match=r"KEV feed: HTTP 502 Bad Gateway from http://127\.0\.0\.1:\d+/.*; "
                                                r"gave up after 4 attempts"):
        kev_sync()
    assert len(server.requests) == 1 + 4
    state = FeedState.objects.get(feed="kev")
    assert "HTTP 502" in state.last_error and state.records == 1
    assert KevEntry.objects.count() == 1


def test_a_404_is_not_retried(server):
    with pytest.raises(FeedDownloadError, match="HTTP 404"):
        kev_sync()
    assert len(server.requests) == 1


def test_a_body_over_the_size_cap_is_refused_announced_or_not(server, settings):
    settings.WATCHPOST_FEED_MAX_BYTES = 1_000
    big = kev_bytes([kev_entry(f"CVE-2021-{41773 + n}") for n in range(20)])
    server.script[KEV_PATH] = [(200, {}, big)]
    with pytest.raises(FeedDownloadError, match="announces .* bytes, over the limit of 1,000"):
        kev_sync()
    server.script[KEV_PATH] = [(200, {"Content-Length": None}, big)]  # no length: the body is counted as it comes
    with pytest.raises(FeedDownloadError, match="sent more than 1,000 bytes"):
        kev_sync()
    assert KevEntry.objects.count() == 0


def test_a_downloaded_file_in_a_bad_format_is_refused_like_an_imported_one(server):
    server.script["/epss_scores-current.csv.gz"] = [(200, {}, epss_gzip(EPSS_ROWS, header="cve,epss"))]
    with pytest.raises(ValueError, match="EPSS feed, line 2: the header is 'cve,epss'"):
        epss_sync()
    assert FeedState.objects.get(feed="epss").last_error.startswith("EPSS feed, line 2")


def test_the_sync_commands_report_success_and_failure(server, capsys):
    server.script[KEV_PATH] = [(200, {}, kev_bytes([kev_entry("CVE-2021-41773")]))]
    call_command("sync_kev")
    assert "1 KEV entries" in capsys.readouterr().out
    with pytest.raises(CommandError, match="EPSS feed: HTTP 404"):
        call_command("sync_epss")


def test_the_beat_tasks_run_the_same_sync_and_record_a_failure_without_raising(server):
    server.script[KEV_PATH] = [(200, {}, kev_bytes([kev_entry("CVE-2021-41773")]))]
    kev_sync_task.apply()
    epss_sync_task.apply()  # 404: recorded, not raised
    assert KevEntry.objects.count() == 1
    assert "HTTP 404" in FeedState.objects.get(feed="epss").last_error
    assert feeds_staleness_check_task.apply().get() == {"opened": 0, "resolved": 0}  # no organization here


def test_setup_periodic_tasks_schedules_both_syncs_daily_and_the_staleness_check_hourly(db):
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")  # idempotent
    rows = {t.task: t for t in PeriodicTask.objects.filter(task__in=[
        "scans.tasks.kev_sync", "scans.tasks.epss_sync", "scans.tasks.feeds_staleness_check"])}
    assert set(rows) == {"scans.tasks.kev_sync", "scans.tasks.epss_sync", "scans.tasks.feeds_staleness_check"}
    assert (rows["scans.tasks.kev_sync"].crontab.hour, rows["scans.tasks.kev_sync"].crontab.minute) == ("6", "5")
    assert rows["scans.tasks.epss_sync"].crontab.hour == "6"
    assert rows["scans.tasks.feeds_staleness_check"].interval.every == 3600
    assert PeriodicTask.objects.filter(task="scans.tasks.kev_sync").count() == 1
