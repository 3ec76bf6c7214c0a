"""Keeping the CVE catalog current from the NVD CVE API 2.0, and recording each feed run.

:func:`nvd_sync` is the one service behind ``sync_cves``, the daily beat task and the
benchmark. The first run reads the whole catalog page by page (``startIndex``, 2,000
records a page); every later run asks only for what changed since the last success,
in ``lastModStartDate``/``lastModEndDate`` windows of at most 120 days (NVD's maximum).

Each page is applied through the catalog's batch code (:func:`cve_catalog_apply`) in its
own transaction, together with the checkpoint in ``FeedState(feed=nvd)``: the window
and the next ``startIndex``. A crash or a refused page leaves the catalog as it was
after the last finished page, and the next run asks for the checkpoint's page first.

A page is refused, with a message naming the feed, the page and what was wrong, when
its body is not JSON or is cut short, when it names another format or schema version,
when a record lacks its id, or when it is larger than ``WATCHPOST_NVD_MAX_PAGE_BYTES``.

:func:`nvd_files_import` records the same ``FeedState`` for the files ``import_cves``
reads on sites without a network. Both return the ids of the CVEs they created,
updated or saw rejected: what the findings must be matched against again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from scans.cve.catalog import BATCH_SIZE, CatalogCounts, cve_catalog_apply, cve_catalog_import
from scans.cve.nvd import CveEntry, NvdFeed, NvdFormatError
from scans.cve.nvd_client import NvdClient, NvdFetchError, Page, RateLimiter
from scans.cve.rematch import catalog_changed
from scans.models import CveRecord, Feed, FeedState

logger = structlog.get_logger(__name__)

RESULTS_PER_PAGE = 2000  # NVD's maximum for the CVE API
MAX_WINDOW = timedelta(days=120)  # NVD refuses a lastMod range longer than this
FEED_NAME = "NVD feed"
SYNC_LOCK = 0x4E56_4453_594E_43  # "NVDSYNC": the advisory lock's key


class NvdSyncError(RuntimeError):
    """A sync that stopped: the message is in ``FeedState.last_error``; ``result`` has what it applied before."""

    def __init__(self, message: str, *, result: SyncResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class SyncProgress:
    """Where a sync is, after each applied page."""

    window: str  # "full catalog" or "lastMod 2026-01-01..2026-04-30"
    done: int  # records of this window read so far
    total: int  # the window's totalResults
    pages: int  # pages applied in this run
    waited_s: float  # seconds spent waiting for the rate limit


@dataclass
class SyncResult:
    counts: CatalogCounts = field(default_factory=CatalogCounts)
    pages: int = 0
    requests: int = 0
    retries: int = 0
    full: bool = False  # a full sync ran (or was finished) in this run
    synced_through: datetime | None = None  # the catalog holds every change NVD published up to here

    @property
    def changed_ids(self) -> set[str]:
        """Created, updated or rejected: the CVEs whose findings must be matched again."""
        return self.counts.changed_ids

    @property
    def rejected_ids(self) -> set[str]:
        return self.counts.rejected_ids


def nvd_client_from_settings(**overrides) -> NvdClient:
    api_key = settings.NVD_API_KEY
    options = {
        "api_key": api_key,
        "limiter": RateLimiter.for_nvd(api_key=api_key, unlimited=settings.WATCHPOST_NVD_MIRROR_UNLIMITED),
        "max_bytes": settings.WATCHPOST_NVD_MAX_PAGE_BYTES,
        "timeout": settings.WATCHPOST_NVD_TIMEOUT_SECONDS,
        "max_attempts": settings.WATCHPOST_NVD_MAX_ATTEMPTS,
    }
    options.update(overrides)
    return NvdClient(settings.WATCHPOST_NVD_API_URL, **options)


def nvd_sync(*, client: NvdClient | None = None, full: bool = False, now: Callable[[], datetime] = timezone.now,
             progress: Callable[[SyncProgress], None] | None = None, results_per_page: int = RESULTS_PER_PAGE,
             batch_size: int = BATCH_SIZE) -> SyncResult:
    """Bring the catalog up to date with NVD: resume, full sync if never done, then windows to now.

    ``full`` starts over with a full sync (stored records are kept; unchanged ones are skipped).
    Raises :class:`NvdSyncError` after recording the reason in ``FeedState.last_error``.
    """
    with _one_sync_at_a_time():
        return _sync(client=client or nvd_client_from_settings(), full=full, now=now, progress=progress,
                     results_per_page=results_per_page, batch_size=batch_size)


@contextmanager
def _one_sync_at_a_time() -> Iterator[None]:
    """A PostgreSQL advisory lock: the beat's run and a person's ``sync_cves`` never share a checkpoint."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SYNC_LOCK])
        if not cursor.fetchone()[0]:
            raise NvdSyncError(f"{FEED_NAME}: another sync is running; this one did not start", result=SyncResult())
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SYNC_LOCK])


def _sync(*, client: NvdClient, full: bool, now: Callable[[], datetime], progress, results_per_page: int,
          batch_size: int) -> SyncResult:
    started = now()
    state, _ = FeedState.objects.get_or_create(feed=Feed.NVD)
    # Pages a crashed run applied are in the catalog already: their ids come from imported_at.
    resumed_since = state.checkpoint.get("pending_since")
    state.last_attempt_at = started
    if full:
        state.checkpoint = {"pending_since": resumed_since} if resumed_since else {}
    state.save(update_fields=["last_attempt_at", "checkpoint", "updated_at"])
    run = _Run(state=state, client=client, progress=progress, per_page=results_per_page, batch_size=batch_size)
    try:
        if "window" in state.checkpoint:
            run.window(dict(state.checkpoint["window"]))
        if "synced_through" not in state.checkpoint:
            run.window({"start": None, "end": started.isoformat(), "start_index": 0})
        while (through := datetime.fromisoformat(state.checkpoint["synced_through"])) < started:
            end = min(through + MAX_WINDOW, started)
            run.window({"start": through.isoformat(), "end": end.isoformat(), "start_index": 0})
    except (NvdFetchError, NvdFormatError) as error:
        run.result.requests, run.result.retries = client.requests, client.retries
        message = str(error)
        state.last_error = message
        state.save(update_fields=["last_error", "updated_at"])
        logger.warning("nvd_sync.failed", error=message, pages=run.result.pages)
        raise NvdSyncError(message, result=run.result) from error
    if resumed_since:
        run.result.counts += _changed_since(datetime.fromisoformat(resumed_since))
    synced_through = datetime.fromisoformat(state.checkpoint["synced_through"])
    run.result.synced_through = synced_through
    run.result.requests, run.result.retries = client.requests, client.retries
    state.checkpoint = {"synced_through": synced_through.isoformat()}
    _record_success(state, at=now(), source_date=synced_through)
    logger.info("nvd_sync.done", pages=run.result.pages, **run.result.counts.as_dict())
    catalog_changed(run.result.counts.changed_ids)
    return run.result


class _Run:
    """One sync's walk through its windows; ``state.checkpoint`` moves with each applied page."""

    def __init__(self, *, state: FeedState, client: NvdClient, progress, per_page: int, batch_size: int) -> None:
        self.state = state
        self.client = client
        self.progress = progress
        self.per_page = per_page
        self.batch_size = batch_size
        self.result = SyncResult()

    def window(self, window: dict) -> None:
        start = None if window["start"] is None else datetime.fromisoformat(window["start"])
        end = datetime.fromisoformat(window["end"])
        label = "full catalog" if start is None else f"lastMod {_day(start)}..{_day(end)}"
        self.result.full |= start is None
        start_index = int(window["start_index"])
        total: int | None = None

        def where(index: int) -> str:
            return f"{FEED_NAME}, {label}, page startIndex={index}"

        def fetch(index: int) -> _ReadPage:
            params: dict[str, str | int] = {"resultsPerPage": self.per_page, "startIndex": index}
            if start is not None:
                params["lastModStartDate"] = _nvd_time(start)
                params["lastModEndDate"] = _nvd_time(end)
            page = self.client.fetch_page(params, where=where(index))
            return _ReadPage.read(page, where=where(index))

        # The next page is asked for and parsed while this one is written, once the window's size
        # is known (never a guess that would spend one of NVD's rate-limited requests for nothing).
        # Requests stay one at a time: a wrong guess is waited for and dropped before the next.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nvd-prefetch") as pool:
            ahead: tuple[int, Future[_ReadPage]] | None = None
            try:
                while True:
                    if ahead is not None and ahead[0] == start_index:
                        page = ahead[1].result()
                    else:
                        _drop(ahead)
                        page = fetch(start_index)
                    ahead = None
                    if total is not None and start_index + self.per_page < total:
                        ahead = (start_index + self.per_page, pool.submit(fetch, start_index + self.per_page))
                    total = self._apply(page, where=where(start_index), window=window, start_index=start_index)
                    self.result.pages += 1
                    done = start_index + len(page.entries)
                    if self.progress:
                        self.progress(SyncProgress(window=label, done=min(done, total), total=total,
                                                   pages=self.result.pages, waited_s=self.client.limiter.waited))
                    if done >= total:
                        return
                    start_index = done
            finally:
                _drop(ahead)

    @transaction.atomic
    def _apply(self, page: _ReadPage, *, where: str, window: dict, start_index: int) -> int:
        """Write one page and move the checkpoint past it, together or not at all; the window's total."""
        if page.error is not None:
            raise page.error
        total = _check_answer(page.metadata, where=where, start_index=start_index, read=len(page.entries))
        checkpoint = dict(self.state.checkpoint)
        checkpoint.setdefault("pending_since", timezone.now().isoformat())
        counts = cve_catalog_apply(entries=page.entries, batch_size=self.batch_size)
        done = start_index + len(page.entries)
        if done >= total:
            checkpoint.pop("window", None)
            checkpoint["synced_through"] = window["end"]
        else:
            checkpoint["window"] = {**window, "start_index": done}
        self.state.checkpoint = checkpoint
        self.state.save(update_fields=["checkpoint", "updated_at"])
        self.result.counts += counts
        return total


@dataclass
class _ReadPage:
    """One answer parsed whole (2,000 records at most), or the reason it cannot be used."""

    entries: list[CveEntry]
    metadata: dict
    error: NvdFormatError | None = None

    @classmethod
    def read(cls, page: Page, *, where: str) -> _ReadPage:
        feed = NvdFeed(page.body, name=where)
        entries: list[CveEntry] = []
        with page.body:
            try:
                entries.extend(feed)
            except NvdFormatError as error:
                return cls(entries=[], metadata=feed.metadata, error=error)
        return cls(entries=entries, metadata=feed.metadata)


def _drop(ahead: tuple[int, Future[_ReadPage]] | None) -> None:
    """Wait for a page fetched ahead that will not be applied."""
    if ahead is None:
        return
    try:
        ahead[1].result()
    except (NvdFetchError, OSError):
        pass  # its failure would be met again when that page is asked for


def _check_answer(metadata: dict, *, where: str, start_index: int, read: int) -> int:
    """The API answer's header, checked once its records are read (the transaction is still open)."""
    if metadata.get("format") != "NVD_CVE":
        raise NvdFormatError(where, f"the answer's format is {metadata.get('format')!r}, expected 'NVD_CVE'")
    if not str(metadata.get("version", "")).startswith("2."):
        raise NvdFormatError(where, f"the answer's version is {metadata.get('version')!r}, expected 2.x")
    total = metadata.get("totalResults")
    if not isinstance(total, int) or total < 0:
        raise NvdFormatError(where, f"the answer's totalResults is {total!r}, expected a count")
    if metadata.get("startIndex", start_index) != start_index:
        # A server that ignores paging would send the first page forever.
        raise NvdFormatError(where, f"the answer starts at {metadata.get('startIndex')!r}, not at the page asked for")
    if read == 0 and start_index < total:
        raise NvdFormatError(where, f"the page is empty although totalResults is {total}")
    return total


def _changed_since(since: datetime) -> CatalogCounts:
    rows = CveRecord.objects.filter(imported_at__gte=since).values_list("cve_id", "vuln_status")
    changed: set[str] = set()
    rejected: set[str] = set()
    for cve_id, status in rows.iterator(chunk_size=10_000):
        changed.add(cve_id)
        if status.lower() == CveRecord.REJECTED.lower():
            rejected.add(cve_id)
    return CatalogCounts(changed_ids=changed, rejected_ids=rejected)


def nvd_files_import(*, paths: Iterable[str | os.PathLike[str]], batch_size: int = BATCH_SIZE,
                     now: Callable[[], datetime] = timezone.now) -> CatalogCounts:
    """Import NVD API 2.0 files (``import_cves``) and record the run on ``FeedState(feed=nvd)``.

    Each file is all or nothing (see :func:`cve_catalog_import`); a refused file is the
    feed's ``last_error`` and leaves the files before it imported. ``source_date`` is the
    newest ``lastModified`` the catalog holds. The sync's checkpoint is left alone.
    """
    state, _ = FeedState.objects.get_or_create(feed=Feed.NVD)
    state.last_attempt_at = now()
    state.save(update_fields=["last_attempt_at", "updated_at"])
    try:
        counts = cve_catalog_import(paths=paths, batch_size=batch_size)
    except (NvdFormatError, OSError) as error:
        state.last_error = f"{FEED_NAME}: {error}"
        state.save(update_fields=["last_error", "updated_at"])
        raise
    newest = CveRecord.objects.order_by("-last_modified").exclude(last_modified=None).values_list(
        "last_modified", flat=True).first()
    _record_success(state, at=now(), source_date=newest)
    catalog_changed(counts.changed_ids)
    return counts


def _record_success(state: FeedState, *, at: datetime, source_date: datetime | None) -> None:
    state.last_success_at = at
    state.last_error = ""
    state.records = CveRecord.objects.count()
    state.source_date = source_date
    state.save(update_fields=["last_success_at", "last_error", "records", "source_date", "checkpoint", "updated_at"])


def _nvd_time(moment: datetime) -> str:
    """NVD's extended ISO-8601 form, in UTC: 2026-01-01T00:00:00.000+00:00."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")
