"""Keeping the exploitation feeds current: CISA KEV and FIRST EPSS, downloaded or imported from a file.

``kev_sync`` / ``epss_sync`` (beat, daily, and ``manage.py sync_kev`` / ``sync_epss``) download the
feed from its setting's URL and hand the file to ``kev_import`` / ``epss_import``, which the
air-gapped commands ``import_kev FILE`` / ``import_epss FILE`` call directly. Either way:

* the file is the feed's whole snapshot, applied in one transaction: COPY into a temporary
  table, then the stored rows are replaced by its rows (one DELETE, one INSERT); a malformed
  file changes nothing;
* the findings naming those CVEs take the new values in the same transaction
  (``exploitation_values_refresh``);
* the feed's ``FeedState`` row says when it was last attempted, last succeeded, how many records
  it holds, the source's own date and the last error; a success resolves its ``feed_stale``
  interventions.

The statements are the same few whatever the file's size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import IO

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from scans.cve.epss import EpssScores
from scans.cve.exploitation import exploitation_values_refresh
from scans.findings.priority import findings_reprioritize
from scans.cve.feed_download import FeedDownloadError, feed_download
from scans.cve.feed_reading import FeedFormatError
from scans.cve.feed_staleness import feed_stale_interventions_resolve
from scans.cve.kev import kev_catalog_read
from scans.models import EpssScore, Feed, FeedState, KevEntry

logger = structlog.get_logger(__name__)

Source = str | os.PathLike[str] | IO[bytes]
# Errors a feed run records on its FeedState row and reports to whoever started it.
FEED_ERRORS = (FeedFormatError, FeedDownloadError, OSError)
_KEV_COLUMNS = ("cve_id", "vendor", "product", "name", "date_added", "due_date", "required_action",
                "known_ransomware_use", "notes")


@dataclass(frozen=True)
class FeedImport:
    feed: str
    records: int
    removed: int
    source_date: datetime | None
    findings_updated: int


def kev_sync() -> FeedImport:
    """Download the KEV catalog from ``WATCHPOST_KEV_URL`` and import it."""
    return _sync(Feed.KEV, settings.WATCHPOST_KEV_URL, kev_import)


def epss_sync() -> FeedImport:
    """Download the day's EPSS scores from ``WATCHPOST_EPSS_URL`` and import them."""
    return _sync(Feed.EPSS, settings.WATCHPOST_EPSS_URL, epss_import)


def kev_import(*, source: Source) -> FeedImport:
    """The KEV catalog in ``source`` (a path or a binary stream, JSON plain or gzip) replaces the stored one."""
    return _recorded(Feed.KEV, lambda: _kev_apply(source))


def epss_import(*, source: Source) -> FeedImport:
    """The EPSS scores in ``source`` (a path or a binary stream, CSV plain or gzip) replace the stored ones."""
    return _recorded(Feed.EPSS, lambda: _epss_apply(source))


def _sync(feed: str, url: str, importer: Callable[..., FeedImport]) -> FeedImport:
    _attempt_record(feed)
    try:
        body = feed_download(url, feed=Feed(feed).name, max_bytes=settings.WATCHPOST_FEED_MAX_BYTES,
                             timeout=settings.WATCHPOST_FEED_TIMEOUT_SECONDS, retries=settings.WATCHPOST_FEED_RETRIES,
                             backoff=settings.WATCHPOST_FEED_BACKOFF_SECONDS)
    except FEED_ERRORS as error:
        _failure_record(feed, error)
        raise
    with body:
        return importer(source=body)


def _recorded(feed: str, apply: Callable[[], tuple[int, int, datetime | None]]) -> FeedImport:
    """Run ``apply`` in one transaction with the findings' refresh; record the outcome on the feed's row."""
    _attempt_record(feed)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # One run of a feed at a time: beat's sync and an operator's import wait for each other.
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"watchpost:feed:{feed}"])
            records, removed, source_date = apply()
            changed = exploitation_values_refresh()
            # KEV and EPSS are inputs of a finding's priority, and so of its node's score.
            findings_reprioritize(finding_ids=changed)
            updated = len(changed)
            FeedState.objects.filter(feed=feed).update(
                last_success_at=timezone.now(), last_error="", records=records, source_date=source_date)
    except FEED_ERRORS as error:
        _failure_record(feed, error)
        raise
    feed_stale_interventions_resolve(feed=feed)
    result = FeedImport(feed=feed, records=records, removed=removed, source_date=source_date, findings_updated=updated)
    logger.info("feed.imported", feed=feed, records=records, removed=removed, findings_updated=updated,
                source_date=source_date.isoformat() if source_date else None)
    return result


def _attempt_record(feed: str) -> None:
    FeedState.objects.update_or_create(feed=feed, defaults={"last_attempt_at": timezone.now()})


def _failure_record(feed: str, error: Exception) -> None:
    message = str(error) if not isinstance(error, OSError) else f"{error.filename or ''}: {error.strerror or error}"
    FeedState.objects.filter(feed=feed).update(last_error=message[:2000])
    logger.warning("feed.failed", feed=feed, error=message[:500])


def _opened(stack: ExitStack, source: Source) -> IO[bytes]:
    if hasattr(source, "read"):
        return source  # type: ignore[return-value]
    return stack.enter_context(open(source, "rb"))  # noqa: SIM115 - closed by the stack


def _kev_apply(source: Source) -> tuple[int, int, datetime | None]:
    with ExitStack() as stack:
        catalog = kev_catalog_read(_opened(stack, source), limit=settings.WATCHPOST_FEED_MAX_BYTES)

    def fill(copy) -> None:
        for listing in catalog.listings:
            copy.write_row([getattr(listing, column) for column in _KEV_COLUMNS])

    removed = _snapshot_replace(KevEntry, _KEV_COLUMNS, fill)
    return len(catalog.listings), removed, catalog.released


def _epss_apply(source: Source) -> tuple[int, int, datetime | None]:
    with ExitStack() as stack:
        scores = EpssScores(_opened(stack, source), limit=settings.WATCHPOST_FEED_MAX_BYTES)

        def fill(copy) -> None:
            for block in scores.copy_blocks():
                copy.write(block)

        removed = _snapshot_replace(EpssScore, ("cve_id", "score", "percentile"), fill,
                                    constants={"model_date": scores.model.score_date.date()})
    return scores.rows, removed, scores.model.score_date


def _snapshot_replace(model, columns: tuple[str, ...], fill: Callable, *, constants: dict | None = None) -> int:
    """Make ``model``'s table hold exactly the rows ``fill`` copies: COPY, then DELETE all and INSERT all.

    Replacing every row beats an upsert two to three times over (no speculative insertion per
    row, no conflict check), and inside the caller's transaction readers see the old snapshot
    until the new one commits. Returns how many stored rows were no longer in the snapshot.
    """
    qn = connection.ops.quote_name
    constants = constants or {}
    table, staging = qn(model._meta.db_table), qn(f"feed_{model._meta.db_table}")
    copied = ", ".join(qn(c) for c in columns)
    written = ", ".join(qn(c) for c in (*columns, *constants))
    selected = ", ".join([*(qn(c) for c in columns), *("%s" for _ in constants)])
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {staging}; "
                       f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS SELECT {copied} FROM {table} WITH NO DATA")
        with cursor.cursor.copy(f"COPY {staging} ({copied}) FROM STDIN") as copy:
            fill(copy)
        # The planner needs the staging table's size to pick a hash join for the count below.
        cursor.execute(f"ANALYZE {staging}")
        cursor.execute(f"WITH gone AS (DELETE FROM {table} RETURNING cve_id) SELECT count(*) FROM gone "
                       f"WHERE NOT EXISTS (SELECT 1 FROM {staging} s WHERE s.cve_id = gone.cve_id)")
        removed = cursor.fetchone()[0]
        cursor.execute(f"INSERT INTO {table} ({written}) SELECT {selected} FROM {staging}", list(constants.values()))
    return removed
