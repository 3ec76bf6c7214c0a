"""Downloading a feed file over HTTP(S): retries with backoff on 429 and 5xx, redirects, a size cap.

The standard library's ``http.client``, as the webhooks use it: one GET, read in chunks into a
temporary file that the feed's reader then opens as it
would a local file. A 429 or 5xx answer, a refused or reset connection and a timeout are
retried with exponential backoff and jitter (a ``Retry-After`` in seconds is honoured, within
the backoff's ceiling); any other answer fails at once, and so does a redirect from https to
anything else. A body longer than the cap is refused
as it arrives, whatever ``Content-Length`` claimed.
"""

from __future__ import annotations

import http.client
import random
import tempfile
import time
from collections.abc import Callable
from typing import IO
from urllib.parse import urljoin, urlsplit

import structlog

logger = structlog.get_logger(__name__)

MAX_REDIRECTS = 5
BACKOFF_CEILING_SECONDS = 300.0
CHUNK = 1 << 20
USER_AGENT = "Watchpost feed sync"


class FeedDownloadError(Exception):
    """The feed could not be downloaded; the message says from where and why."""


def feed_download(url: str, *, feed: str, max_bytes: int, timeout: float, retries: int, backoff: float,
                  sleep: Callable[[float], None] = time.sleep) -> IO[bytes]:
    """The body at ``url`` in a temporary file positioned at its start (closing it removes it)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return _get(url, feed=feed, max_bytes=max_bytes, timeout=timeout)
        except _Transient as transient:
            if attempt > retries:
                raise FeedDownloadError(f"{feed} feed: {transient} from {transient.url}; gave up after "
                                        f"{attempt} attempts") from None
            delay = min(BACKOFF_CEILING_SECONDS, backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            if transient.retry_after is not None:
                delay = min(BACKOFF_CEILING_SECONDS, max(delay, transient.retry_after))
            logger.info("feed.download_retry", feed=feed, url=transient.url, reason=str(transient), attempt=attempt,
                        delay_s=round(delay, 2))
            sleep(delay)


class _Transient(Exception):
    def __init__(self, message: str, *, url: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.retry_after = retry_after


def _get(url: str, *, feed: str, max_bytes: int, timeout: float) -> IO[bytes]:
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FeedDownloadError(f"{feed} feed: {url!r} is not an http(s) URL")
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
            response = connection.getresponse()
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                target = urljoin(url, response.getheader("Location"))
                if parts.scheme == "https" and urlsplit(target).scheme != "https":
                    # The feeds decide priorities: an answer that leaves TLS could be anyone's.
                    raise FeedDownloadError(f"{feed} feed: {url} redirects to {target}, away from https; refused")
                url = target
                continue
            if response.status == 429 or response.status >= 500:
                raise _Transient(f"HTTP {response.status} {response.reason}", url=url,
                                 retry_after=_seconds(response.getheader("Retry-After")))
            if response.status != 200:
                raise FeedDownloadError(f"{feed} feed: HTTP {response.status} {response.reason} from {url}")
            return _body(response, url=url, feed=feed, max_bytes=max_bytes)
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timeout, TLS, malformed answer
            raise _Transient(f"{type(error).__name__}: {error}", url=url) from None
        finally:
            connection.close()
    raise FeedDownloadError(f"{feed} feed: more than {MAX_REDIRECTS} redirects from {url}")


def _body(response: http.client.HTTPResponse, *, url: str, feed: str, max_bytes: int) -> IO[bytes]:
    def refuse(size: int, announced: bool) -> FeedDownloadError:
        if announced:
            return FeedDownloadError(f"{feed} feed: {url} announces {size:,} bytes, over the limit of "
                                     f"{max_bytes:,} (WATCHPOST_FEED_MAX_BYTES)")
        return FeedDownloadError(f"{feed} feed: {url} sent more than {max_bytes:,} bytes, the limit "
                                 "(WATCHPOST_FEED_MAX_BYTES)")

    body, received = body_to_file(response, max_bytes=max_bytes, refuse=refuse)
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and received != int(declared):
        body.close()
        raise _Transient(f"the answer ended after {received:,} of {int(declared):,} bytes", url=url)
    return body


def body_to_file(response: http.client.HTTPResponse, *, max_bytes: int, refuse: Callable[[int, bool], Exception],
                 spool_bytes: int = 0) -> tuple[IO[bytes], int]:
    """A response's body in a temporary file positioned at its start, and its size in bytes.

    Refused, with ``refuse(size, announced)``, as soon as the Content-Length announces more than
    ``max_bytes`` or the body streams past it: nothing over the cap is buffered. With
    ``spool_bytes`` the file stays in memory up to that size."""
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise refuse(int(declared), True)
    body = tempfile.SpooledTemporaryFile(max_size=spool_bytes) if spool_bytes else tempfile.TemporaryFile()
    size = 0
    try:
        while chunk := response.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise refuse(size, False)
            body.write(chunk)
    except BaseException:
        body.close()
        raise
    body.seek(0)
    return body, size


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
