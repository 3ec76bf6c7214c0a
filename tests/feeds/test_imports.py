"""import_kev / import_epss: a feed file replaces the stored snapshot whole, or changes nothing."""

from __future__ import annotations

import gzip
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from scans.cve.feed_reading import FeedFormatError
from scans.cve.feed_sync import epss_import, kev_import
from scans.models import EpssScore, FeedState, KevEntry
from tests.feeds.files import epss_gzip, epss_text, kev_bytes, kev_entry, write

pytestmark = pytest.mark.django_db


def test_a_kev_catalog_is_stored_entry_by_entry_with_its_dates_and_ransomware_use(tmp_path):
    path = write(tmp_path, "kev.json", kev_bytes([
        kev_entry("CVE-2021-41773", added="2021-11-03", due="2021-11-17", ransomware="Known"),
        kev_entry("CVE-2023-44487", added="2023-10-10", due="", notes=""),
    ]))
    result = kev_import(source=path)
    assert result.records == 2
    apache = KevEntry.objects.get(pk="CVE-2021-41773")
    assert (apache.date_added, apache.due_date) == (date(2021, 11, 3), date(2021, 11, 17))
    assert apache.known_ransomware_use is True
    assert apache.vendor == "Apache" and apache.required_action.startswith("Apply updates")
    assert KevEntry.objects.get(pk="CVE-2023-44487").due_date is None
    state = FeedState.objects.get(feed="kev")
    assert state.records == 2 and state.last_error == "" and state.last_success_at is not None
    assert state.source_date.isoformat().startswith("2026-12-06T17:01:48")


def test_a_gzip_kev_catalog_reads_like_the_plain_one(tmp_path):
    path = write(tmp_path, "kev.json.gz", gzip.compress(kev_bytes([kev_entry("CVE-2021-41773")])))
    kev_import(source=path)
    assert list(KevEntry.objects.values_list("pk", flat=True)) == ["CVE-2021-41773"]


def test_a_cve_missing_from_the_newest_kev_catalog_is_no_longer_listed(tmp_path):
    kev_import(source=write(tmp_path, "a.json", kev_bytes([kev_entry("CVE-2021-41773"), kev_entry("CVE-2020-1938")])))
    result = kev_import(source=write(tmp_path, "b.json", kev_bytes([kev_entry("CVE-2021-41773", added="2021-11-04")])))
    assert result.removed == 1
    assert list(KevEntry.objects.values_list("pk", "date_added")) == [("CVE-2021-41773", date(2021, 11, 4))]


def test_an_epss_day_is_stored_with_its_model_date(tmp_path):
    path = write(tmp_path, "epss.csv.gz", epss_gzip([("CVE-1999-0001", "0.01141", "0.77888"),
                                                    ("CVE-2021-41773", "0.94432", "0.99961")]))
    result = epss_import(source=path)
    assert result.records == 2
    score = EpssScore.objects.get(pk="CVE-2021-41773")
    assert (score.score, score.percentile, score.model_date) == (0.94432, 0.99961, date(2026, 12, 6))
    assert FeedState.objects.get(feed="epss").source_date.date() == date(2026, 12, 6)


def test_a_plain_epss_csv_reads_like_the_gzip_one(tmp_path):
    epss_import(source=write(tmp_path, "epss.csv", epss_text([("CVE-1999-0001", "1e-05", "0.0")])))
    assert EpssScore.objects.get(pk="CVE-1999-0001").score == pytest.approx(1e-05)


def test_scores_missing_from_the_newest_epss_day_are_removed(tmp_path):
    yesterday = [("CVE-1999-0001", "0.1", "0.5"), ("CVE-1999-0002", "0.2", "0.6")]
    epss_import(source=write(tmp_path, "a.csv.gz", epss_gzip(yesterday, score_date="2026-12-05")))
    result = epss_import(source=write(tmp_path, "b.csv.gz", epss_gzip([("CVE-1999-0002", "0.3", "0.7")])))
    assert result.removed == 1
    stored = list(EpssScore.objects.values_list("pk", "score", "model_date"))
    assert stored == [("CVE-1999-0002", 0.3, date(2026, 12, 6))]


def test_an_epss_import_sends_the_same_statements_whatever_the_file_size(tmp_path, statements):
    def sent_for(rows: int) -> int:
        path = write(tmp_path, f"{rows}.csv.gz",
                     epss_gzip([(f"CVE-2020-{10000 + n}", "0.5", "0.5") for n in range(rows)]))
        before = len(statements)
        epss_import(source=path)
        return len(statements) - before

    sent_for(5)  # the feed's state row exists from here on, as it does after a first import
    assert sent_for(10) == sent_for(30_000)


# --- bad input: refused with the feed, the place and the reason; nothing written ---------------------------

KEV_BEFORE = [kev_entry("CVE-2021-41773")]
EPSS_BEFORE = [("CVE-1999-0001", "0.1", "0.5")]


@pytest.fixture
def feeds_before(tmp_path):
    kev_import(source=write(tmp_path, "kev-before.json", kev_bytes(KEV_BEFORE)))
    epss_import(source=write(tmp_path, "epss-before.csv", epss_text(EPSS_BEFORE)))
    return {"kev": FeedState.objects.get(feed="kev").last_success_at,
            "epss": FeedState.objects.get(feed="epss").last_success_at}


def _unchanged(feeds_before, feed: str, error: FeedFormatError) -> None:
    assert list(KevEntry.objects.values_list("pk", flat=True)) == ["CVE-2021-41773"]
    assert list(EpssScore.objects.values_list("pk", "score")) == [("CVE-1999-0001", 0.1)]
    state = FeedState.objects.get(feed=feed)
    assert state.last_error == str(error) and state.last_success_at == feeds_before[feed]


@pytest.mark.parametrize(("content", "expected"), [
    (kev_bytes([kev_entry("CVE-2021-41773"), kev_entry("CVE-2024-3400", added="2024-13-02")]),
     "KEV feed, entry 1 (CVE-2024-3400): dateAdded '2024-13-02' is not a date (YYYY-MM-DD)"),
    (kev_bytes([kev_entry("CVE-2024-3400", added="04/12/2024")]),
     "KEV feed, entry 0 (CVE-2024-3400): dateAdded '04/12/2024' is not a date (YYYY-MM-DD)"),
    (kev_bytes([kev_entry("CVE-2024-3400", due="soon")]),
     "KEV feed, entry 0 (CVE-2024-3400): dueDate 'soon' is not a date (YYYY-MM-DD)"),
    (kev_bytes([kev_entry("CVE-24-3400")]), "KEV feed, entry 0: cveID 'CVE-24-3400' is not a CVE id (CVE-YYYY-NNNN)"),
    (kev_bytes([kev_entry("CVE-2024-3400", ransomware="Maybe")]),
     "KEV feed, entry 0 (CVE-2024-3400): knownRansomwareCampaignUse 'Maybe' is neither 'Known' nor 'Unknown'"),
    (kev_bytes([kev_entry("CVE-2024-3400"), kev_entry("CVE-2024-3400")]),
     "KEV feed, entry 1: CVE-2024-3400 is listed twice (also entry 0)"),
    (kev_bytes([kev_entry("CVE-2024-3400")], count=1500),
     "KEV feed: 'count' says 1500 entries but the catalog holds 1; the file is truncated or was edited"),
    (kev_bytes([kev_entry("CVE-2024-3400")])[:-40], "KEV feed: not valid JSON"),
    (b'{"title": "something else"}', "KEV feed: not a KEV catalog: no 'vulnerabilities' list at the top level"),
    (gzip.compress(kev_bytes([kev_entry("CVE-2024-3400")] * 50))[:-30], "KEV feed: the gzip stream is broken"),
], ids=["month-13", "us-date", "due-date", "cve-id", "ransomware", "duplicate", "count", "truncated-json",
        "not-kev", "truncated-gzip"])
def test_a_bad_kev_file_is_refused_naming_the_entry_and_changes_nothing(tmp_path, feeds_before, content, expected):
    with pytest.raises(FeedFormatError) as refused:
        kev_import(source=write(tmp_path, "bad.json", content))
    assert str(refused.value).startswith(expected)
    _unchanged(feeds_before, "kev", refused.value)


GOOD = [(f"CVE-2020-{10000 + n}", "0.5", "0.5") for n in range(3)]


@pytest.mark.parametrize(("content", "expected"), [
    (epss_gzip(GOOD, header="cve,score,percentile"),
     "EPSS feed, line 2: the header is 'cve,score,percentile', expected 'cve,epss,percentile'"),
    (epss_gzip([*GOOD, ("CVE-2020-ABCD", "0.5", "0.5")]),
     "EPSS feed, line 6: 'CVE-2020-ABCD' is not a CVE id (CVE-YYYY-NNNN)"),
    (epss_gzip([*GOOD, ("CVE-2020-20000", "high", "0.5")]),
     "EPSS feed, line 6: CVE-2020-20000: epss 'high' or percentile '0.5' is not a number"),
    (epss_gzip([*GOOD, ("CVE-2020-20000", "1.5", "0.5")]),
     "EPSS feed, line 6: CVE-2020-20000: epss 1.5 and percentile 0.5 must lie between 0 and 1"),
    (epss_gzip([*GOOD, ("CVE-2020-10000", "0.5", "0.5")]), "EPSS feed, line 6: CVE-2020-10000 is scored twice"),
    (epss_gzip([*GOOD, ("CVE-2020-20000", "0.5")]),
     "EPSS feed, line 6: expected 3 fields (cve,epss,percentile), found 2"),
    (gzip.compress(epss_text(GOOD).encode())[:-25], "EPSS feed: the gzip stream is broken"),
    (gzip.compress(b"cve,epss,percentile\nCVE-2020-10000,0.5,0.5\n"),
     "EPSS feed, line 1: expected the comment '#model_version:...,score_date:...', found 'cve,epss,percentile'"),
    (epss_gzip([]), "EPSS feed, line 3: the file has a header but no scores"),
], ids=["header", "cve-id", "not-a-number", "out-of-range", "duplicate", "short-row", "truncated-gzip",
        "no-model-line", "empty"])
def test_a_bad_epss_file_is_refused_naming_the_line_and_changes_nothing(tmp_path, feeds_before, content, expected):
    with pytest.raises(FeedFormatError) as refused:
        epss_import(source=write(tmp_path, "bad.csv.gz", content))
    assert str(refused.value).startswith(expected)
    _unchanged(feeds_before, "epss", refused.value)


def test_a_truncated_epss_file_refused_late_leaves_no_row_of_its_early_part(tmp_path, feeds_before):
    rows = [(f"CVE-2020-{10000 + n}", "0.5", "0.5") for n in range(60_000)]
    content = gzip.compress(epss_text(rows).encode())
    with pytest.raises(FeedFormatError, match="gzip stream is broken"):
        epss_import(source=write(tmp_path, "cut.csv.gz", content[: len(content) * 3 // 4]))
    assert list(EpssScore.objects.values_list("pk", flat=True)) == ["CVE-1999-0001"]


def test_a_file_that_inflates_past_the_cap_is_refused(tmp_path, settings, feeds_before):
    settings.WATCHPOST_FEED_MAX_BYTES = 10_000
    content = gzip.compress(epss_text([(f"CVE-2020-{10000 + n}", "0.5", "0.5") for n in range(2_000)]).encode())
    assert len(content) < 10_000
    with pytest.raises(FeedFormatError, match="larger than the limit of 10,000 bytes"):
        epss_import(source=write(tmp_path, "bomb.csv.gz", content))
    assert EpssScore.objects.count() == 1


def test_the_import_commands_print_what_they_did_and_fail_with_the_reason(tmp_path, capsys):
    call_command("import_kev", str(write(tmp_path, "kev.json", kev_bytes([kev_entry("CVE-2021-41773")]))))
    call_command("import_epss", str(write(tmp_path, "epss.csv.gz", epss_gzip(GOOD))))
    out = capsys.readouterr().out
    assert "1 KEV entries (source date 2026-12-06); 0 no longer listed removed; 0 findings updated." in out
    assert "3 EPSS scores (source date 2026-12-06)" in out
    with pytest.raises(CommandError, match=r"EPSS feed, line 2: the header is 'cve,score,percentile'"):
        call_command("import_epss", str(write(tmp_path, "bad.csv.gz", epss_gzip(GOOD, header="cve,score,percentile"))))
    with pytest.raises(CommandError, match="No such file or directory"):
        call_command("import_kev", str(tmp_path / "missing.json"))
