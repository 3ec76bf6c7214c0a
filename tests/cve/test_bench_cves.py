"""``bench cves``: a small run syncs from the loopback NVD twice and prints one JSON line last."""

import io
import json

import pytest
from django.core.management import call_command

from scans.cve.catalog import CVE_FIXTURE, cve_catalog_import
from scans.models import CveRecord, Feed, FeedState


@pytest.mark.django_db(transaction=True)
def test_bench_cves_measures_syncs_rematch_and_feed_imports_and_leaves_the_catalog_empty():
    FeedState.objects.create(feed=Feed.NVD, records=7)
    out = io.StringIO()

    call_command("bench", "cves", "--records", "3000", "--changed", "50", "--rematch-nodes", "200",
                 "--kev-entries", "100", "--epss-rows", "2000", stdout=out)

    text = out.getvalue()
    summary = json.loads(text.strip().splitlines()[-1])
    assert list(summary) == ["benchmark", "records", "full_sync_s", "incremental_s", "rematch_services",
                             "rematch_s", "kev_s", "epss_s", "peak_rss_mb"]
    assert (summary["benchmark"], summary["records"], summary["rematch_services"]) == ("cves", 3000, 600)
    assert summary["full_sync_s"] > 0 and summary["incremental_s"] > 0 and summary["peak_rss_mb"] > 0
    assert summary["rematch_s"] > 0 and summary["kev_s"] > 0 and summary["epss_s"] > 0
    assert "3,000 created" in text and "50 updated" in text and "600 services on 200 nodes" in text
    assert not CveRecord.objects.exists()
    assert FeedState.objects.get(feed=Feed.NVD).records == 7  # put back as it was


@pytest.mark.django_db(transaction=True)
def test_bench_cves_refuses_to_replace_a_catalog_unless_told():
    cve_catalog_import(paths=[CVE_FIXTURE])

    with pytest.raises(SystemExit, match="--replace-catalog"):
        call_command("bench", "cves", "--records", "10", stdout=io.StringIO())

    assert CveRecord.objects.count() == 35
