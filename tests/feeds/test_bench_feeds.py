"""The feeds' benchmark functions (for ``bench cves``): real-format imports, timed, leaving the feeds as they were."""

from __future__ import annotations

import gzip

import pytest

from scans.benchmarks.feeds import epss_import_seconds, epss_scores_write, kev_catalog_write, kev_import_seconds
from scans.cve.epss import EpssScores
from scans.cve.kev import kev_catalog_read
from scans.models import EpssScore, FeedState, KevEntry

pytestmark = pytest.mark.django_db


def test_the_generated_files_read_as_real_feed_files(tmp_path):
    with open(kev_catalog_write(tmp_path / "kev.json", entries=30), "rb") as handle:
        assert len(kev_catalog_read(handle, limit=1 << 20).listings) == 30
    path = epss_scores_write(tmp_path / "epss.csv.gz", rows=500)
    assert gzip.open(path, "rt").readline().startswith("#model_version:v2025.03.14,score_date:2026-12-06")
    with open(path, "rb") as handle:
        scores = EpssScores(handle, limit=1 << 20)
        assert sum(block.count("\n") for block in scores.copy_blocks()) == 500 == scores.rows


def test_the_timed_imports_leave_the_stored_feeds_untouched(db):
    KevEntry.objects.create(cve_id="CVE-2021-41773", date_added="2021-11-03")
    assert 0 < kev_import_seconds(entries=50) < 60
    assert 0 < epss_import_seconds(rows=2_000) < 60
    assert list(KevEntry.objects.values_list("pk", flat=True)) == ["CVE-2021-41773"]
    assert not EpssScore.objects.exists() and not FeedState.objects.exists()
