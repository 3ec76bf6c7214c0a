"""sync_cves' service: the NVD CVE API 2.0 read from a loopback server, page by page, resumable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from scans.cve.nvd_client import RateLimiter
from scans.cve.nvd_sync import MAX_WINDOW, SYNC_LOCK, NvdSyncError, nvd_client_from_settings, nvd_sync
from scans.lab.nvd_api import NvdApiServer, RecordCorpus, generated_cve, nvd_timestamp
from scans.models import CveProduct, CveRecord, Feed, FeedState

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def records(count: int, *, at: datetime = T0 - timedelta(days=400)) -> list[dict]:
    """Generated CVEs none of which is rejected, modified ``at`` onwards one hour apart."""
    made, index = [], 0
    while len(made) < count:
        record = generated_cve(index, last_modified=at + timedelta(hours=len(made)))
        index += 1
        if record["vulnStatus"] != "Rejected":
            made.append(record)
    return made


@pytest.fixture
def nvd():
    with NvdApiServer(RecordCorpus(records(5))) as server:
        yield server


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(settings, nvd, sleeps):
    settings.WATCHPOST_NVD_API_URL = nvd.url
    settings.WATCHPOST_NVD_MAX_ATTEMPTS = 3
    return nvd_client_from_settings(limiter=RateLimiter(None), sleep=sleeps.append)


def sync(client, **options):
    options.setdefault("results_per_page", 2)
    options.setdefault("now", lambda: T0)
    return nvd_sync(client=client, **options)


def state() -> FeedState:
    return FeedState.objects.get(feed=Feed.NVD)


def test_a_first_sync_reads_every_page_and_records_the_feed_state(db, nvd, client):
    result = sync(client)

    assert [q["startIndex"] for q in nvd.requests] == ["0", "2", "4"]
    assert all(q["resultsPerPage"] == "2" and "lastModStartDate" not in q for q in nvd.requests)
    assert (result.full, result.pages, result.counts.created) == (True, 3, 5)
    assert result.changed_ids == {r["id"] for r in nvd.corpus.records}
    assert CveRecord.objects.count() == 5 and CveProduct.objects.exists()
    feed = state()
    assert (feed.records, feed.last_error, feed.last_success_at, feed.source_date) == (5, "", T0, T0)
    assert feed.checkpoint == {"synced_through": T0.isoformat()}


def test_the_api_key_is_sent_as_the_apikey_header(db, settings, nvd, client):
    settings.NVD_API_KEY = "lab-key"
    keyed = nvd_client_from_settings(limiter=RateLimiter(None))

    sync(keyed)

    assert set(nvd.api_keys) == {"lab-key"}
    assert keyed.limiter.limit is None  # the test's; from settings alone it is 50 per 30 s
    assert RateLimiter.for_nvd(api_key="lab-key").limit == 50


def test_a_later_sync_asks_for_changes_in_windows_of_at_most_120_days(db, nvd, client):
    sync(client)
    nvd.requests.clear()
    later = T0 + timedelta(days=250)
    changed = nvd.corpus.records[1] | {"lastModified": nvd_timestamp(T0 + timedelta(days=200)),
                                       "descriptions": [{"lang": "en", "value": "Revised."}]}
    nvd.corpus.records[1] = changed

    result = sync(client, now=lambda: later)

    windows = [(q["lastModStartDate"], q["lastModEndDate"]) for q in nvd.requests]
    assert [w[0][:10] for w in windows] == ["2026-03-01", "2026-06-29", "2026-10-27"]
    assert [w[1][:10] for w in windows] == ["2026-06-29", "2026-10-27", "2026-11-06"]
    for start, end in windows:
        assert datetime.fromisoformat(end) - datetime.fromisoformat(start) <= MAX_WINDOW
    assert (result.full, result.counts.updated, result.changed_ids) == (False, 1, {changed["id"]})
    assert CveRecord.objects.get(cve_id=changed["id"]).description == "Revised."
    assert state().source_date == later


def test_a_sync_with_nothing_new_changes_nothing(db, nvd, client):
    sync(client)

    result = sync(client, now=lambda: T0 + timedelta(days=1))

    assert (result.counts.created, result.counts.updated, result.changed_ids) == (0, 0, set())


def test_a_crash_mid_sync_resumes_at_the_checkpoint_page(db, nvd, client):
    def crash_after_first_page(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(client, progress=crash_after_first_page)
    assert CveRecord.objects.count() == 2
    assert state().checkpoint["window"]["start_index"] == 2
    nvd.requests.clear()

    result = sync(client)

    assert [q["startIndex"] for q in nvd.requests] == ["2", "4"]
    assert result.counts.created == 3
    # The first run's pages count as changed too: the re-match must not miss them.
    assert result.changed_ids == {r["id"] for r in nvd.corpus.records}
    assert CveRecord.objects.count() == 5
    assert "window" not in state().checkpoint


def test_a_full_resync_after_a_crash_still_reports_what_the_crashed_run_changed(db, nvd, client):
    def crash_after_first_page(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(client, progress=crash_after_first_page)

    result = sync(client, full=True)

    assert [q["startIndex"] for q in nvd.requests][-3:] == ["0", "2", "4"]
    assert (result.counts.created, result.counts.unchanged) == (3, 2)
    assert result.changed_ids == {r["id"] for r in nvd.corpus.records}


def test_it_retries_403_429_and_5xx_with_growing_jittered_delays(db, nvd, client, sleeps):
    nvd.fail(503)
    nvd.fail(429)

    result = sync(client)

    assert result.counts.created == 5 and result.retries == 2
    assert [q["startIndex"] for q in nvd.requests][:3] == ["0", "0", "0"]
    assert 0 <= sleeps[0] <= 2 and 0 <= sleeps[1] <= 4


def test_exhausted_retries_fail_clearly_and_keep_the_finished_pages(db, nvd, client):
    nvd.alter(lambda document: document)  # the first page goes through
    nvd.fail(403, times=3)

    with pytest.raises(NvdSyncError) as caught:
        sync(client)

    message = str(caught.value)
    assert "NVD feed" in message and "startIndex=2" in message and "after 3 attempts" in message
    assert "HTTP 403" in message
    feed = state()
    assert feed.last_error == message and feed.last_success_at is None
    assert feed.checkpoint["window"]["start_index"] == 2
    assert CveRecord.objects.count() == 2


def test_an_answer_nvd_would_not_retry_fails_at_once(db, nvd, client, sleeps):
    nvd.fail(404)

    with pytest.raises(NvdSyncError, match=r"NVD answered HTTP 404 \(lab fault 404\)"):
        sync(client)

    assert len(nvd.requests) == 1 and sleeps == []


def test_the_rate_limit_holds_requests_to_five_per_rolling_30_seconds_without_a_key(db, nvd, settings):
    nvd.corpus.records = records(12)
    clock = FakeClock()
    limiter = RateLimiter.for_nvd(api_key="", clock=clock.now, sleep=clock.sleep)
    settings.WATCHPOST_NVD_API_URL = nvd.url
    client = nvd_client_from_settings(limiter=limiter)

    sync(client, results_per_page=1)

    assert len(nvd.requests) == 12
    assert clock.slept == [30.0, 30.0]  # requests 6 and 11 each wait for the first of their five to age out
    assert limiter.waited == 60.0


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_a_rejected_cve_is_marked_on_its_record_and_never_indexed(db, nvd, client):
    nvd.corpus.records[0] = nvd.corpus.records[0] | {"vulnStatus": "Rejected"}

    result = sync(client)

    record = CveRecord.objects.get(cve_id=nvd.corpus.records[0]["id"])
    assert record.is_rejected and record.vuln_status == "Rejected"
    assert not record.products.exists()
    assert result.rejected_ids == {record.cve_id} and record.cve_id in result.changed_ids
    assert not CveRecord.objects.get(cve_id=nvd.corpus.records[1]["id"]).is_rejected


def test_a_cve_later_rejected_loses_its_index_rows(db, nvd, client):
    sync(client)
    target = nvd.corpus.records[2]
    nvd.corpus.records[2] = target | {"vulnStatus": "Rejected", "lastModified": nvd_timestamp(T0 + timedelta(days=1))}

    result = sync(client, now=lambda: T0 + timedelta(days=2))

    assert result.rejected_ids == {target["id"]}
    assert CveRecord.objects.get(cve_id=target["id"]).is_rejected
    assert not CveProduct.objects.filter(cve__cve_id=target["id"]).exists()


# Bad input: each refused with the feed, the page and what was wrong; nothing of the page kept.

def drop_second_id(document: dict) -> dict:
    del document["vulnerabilities"][1]["cve"]["id"]
    return document


BAD_PAGES = {
    "truncated": (lambda nvd: nvd.truncate(), "truncated"),
    "wrong version": (lambda nvd: nvd.alter(lambda d: d | {"version": "1.1"}), "version is '1.1'"),
    "wrong format": (lambda nvd: nvd.alter(lambda d: d | {"format": "NVD_CPE"}), "format is 'NVD_CPE'"),
    "missing format": (lambda nvd: nvd.alter(lambda d: {k: v for k, v in d.items() if k != "format"}),
                       "format is None"),
    "record without id": (lambda nvd: nvd.alter(drop_second_id), "vulnerabilities[1]: missing 'id'"),
    "over the size cap": (lambda nvd: nvd.flood(8 << 20), "cap of 1,048,576 bytes"),
}


@pytest.mark.parametrize("bad", BAD_PAGES)
def test_a_bad_page_is_refused_whole_and_the_next_sync_resumes_there(db, settings, nvd, client, bad):
    settings.WATCHPOST_NVD_MAX_PAGE_BYTES = 1 << 20
    client = nvd_client_from_settings(limiter=RateLimiter(None), sleep=lambda s: None)
    nvd.alter(lambda document: document)  # page 0 is good
    arrange, detail = BAD_PAGES[bad]
    arrange(nvd)

    with pytest.raises(NvdSyncError) as caught:
        sync(client, batch_size=1)  # batches of one: no record of the page may stay

    message = str(caught.value)
    assert message.startswith("NVD feed, full catalog, page startIndex=2")
    assert detail in message
    assert CveRecord.objects.count() == 2  # page 0 only: nothing of the refused page
    assert state().last_error == message
    assert state().checkpoint["window"]["start_index"] == 2
    nvd.requests.clear()

    result = sync(client)

    assert nvd.requests[0]["startIndex"] == "2"
    assert result.counts.created == 3 and state().last_error == ""


def test_an_answer_announcing_more_than_the_cap_is_refused_before_its_body(db, settings, nvd, client):
    settings.WATCHPOST_NVD_MAX_PAGE_BYTES = 1000  # a page of two generated CVEs is larger

    with pytest.raises(NvdSyncError, match=r"page startIndex=0: the answer is [0-9,]+ bytes, over the cap"):
        sync(nvd_client_from_settings(limiter=RateLimiter(None)))

    assert not CveRecord.objects.exists()


def test_a_second_sync_does_not_start_while_one_is_running(db, nvd, client):
    other = psycopg.connect(**connection.get_connection_params())
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [SYNC_LOCK])

        with pytest.raises(NvdSyncError, match="another sync is running"):
            sync(client)

        assert nvd.requests == []
        assert not FeedState.objects.filter(feed=Feed.NVD).exists()
        other.execute("SELECT pg_advisory_unlock(%s)", [SYNC_LOCK])

        assert sync(client).counts.created == 5
    finally:
        other.close()
