"""Asking the NVD CVE API 2.0 for one page, politely: its rate limit, retries and a size cap.

NVD documents a rolling limit of 5 requests per 30 seconds without an API key and 50
with one; past it, it answers 403 or 429. :class:`RateLimiter` keeps the times of the
last requests and waits before one that would exceed the limit; its clock and sleep are
injected, so tests advance a fake clock instead of sleeping.

:meth:`NvdClient.fetch_page` sends one GET and copies the answer into a spooled temporary
file (memory first, disk past a few megabytes), counting bytes: an answer larger than
the cap is refused as soon as it passes it, never buffered whole. 403, 429, 5xx and
network errors are retried with exponential backoff and full jitter, a bounded number
of times; anything else is a :class:`NvdFetchError` at once.
"""

from __future__ import annotations

import http.client
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlencode, urlsplit

from scans.cve.feed_download import body_to_file

WINDOW_SECONDS = 30.0
REQUESTS_WITHOUT_KEY = 5
REQUESTS_WITH_KEY = 50
RETRY_STATUSES = frozenset({403, 429})  # and every 5xx
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 120.0
READ_CHUNK = 1 << 20
SPOOL_BYTES = 8 << 20


class NvdFetchError(RuntimeError):
    """An answer that cannot be used: retries exhausted, an unexpected status, too large."""


class RateLimiter:
    """At most ``limit`` acquisitions in any rolling ``window`` seconds; ``limit=None`` never waits."""

    def __init__(self, limit: int | None, window: float = WINDOW_SECONDS, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self.sent: deque[float] = deque()
        self.waited = 0.0  # seconds spent waiting, for the progress output

    @classmethod
    def for_nvd(cls, *, api_key: str, unlimited: bool = False, **kwargs) -> RateLimiter:
        if unlimited:
            return cls(None, **kwargs)
        return cls(REQUESTS_WITH_KEY if api_key else REQUESTS_WITHOUT_KEY, **kwargs)

    def acquire(self) -> None:
        if self.limit is None:
            return
        while True:
            now = self.clock()
            while self.sent and now - self.sent[0] >= self.window:
                self.sent.popleft()
            if len(self.sent) < self.limit:
                self.sent.append(now)
                return
            delay = self.window - (now - self.sent[0])
            self.waited += delay
            self.sleep(delay)


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_MAX_SECONDS,
                  rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)], attempt counting from 0."""
    return (rng or random).uniform(0, min(cap, base * 2 ** attempt))


@dataclass
class Page:
    """One answer's body, as a binary file positioned at its start; close it when read."""

    body: IO[bytes]
    size: int
    attempts: int


class NvdClient:
    """GETs pages of the CVE API at ``url``; one instance per sync (it holds the rate limiter)."""

    def __init__(self, url: str, *, api_key: str = "", limiter: RateLimiter, max_bytes: int, timeout: float = 120.0,
                 max_attempts: int = 6, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the NVD API URL must be http(s)://host/path, not {url!r}")
        self.parts = parts
        self.api_key = api_key
        self.limiter = limiter
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.requests = 0
        self.retries = 0

    def fetch_page(self, params: Mapping[str, str | int], *, where: str) -> Page:
        """The answer to one page's query; ``where`` names the page in errors."""
        last = ""
        for attempt in range(self.max_attempts):
            if attempt:
                self.retries += 1
                self.sleep(backoff_delay(attempt - 1, rng=self.rng))
            self.limiter.acquire()
            self.requests += 1
            try:
                status, body, size, message = self._get(params, where=where)
            except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, bad status line
                last = f"{type(error).__name__}: {error}"
                continue
            if status == 200:
                return Page(body=body, size=size, attempts=attempt + 1)
            # NVD says why in a "message" header (an invalid parameter, a rate limit).
            last = f"HTTP {status}" + (f" ({message})" if message else "")
            if status in RETRY_STATUSES or status >= 500:
                continue
            raise NvdFetchError(f"{where}: NVD answered {last}")
        raise NvdFetchError(f"{where}: no usable answer after {self.max_attempts} attempts (last: {last})")

    def _get(self, params: Mapping[str, str | int], *, where: str) -> tuple[int, IO[bytes] | None, int, str]:
        connection_class = http.client.HTTPSConnection if self.parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(self.parts.hostname, self.parts.port, timeout=self.timeout)
        # NVD wants "+" of a UTC offset encoded; urlencode does that, and leaves ":" to be quoted too.
        target = f"{self.parts.path or '/'}?{urlencode(params)}"
        headers = {"Accept": "application/json", "User-Agent": "watchpost-nvd-sync"}
        if self.api_key:
            headers["apiKey"] = self.api_key
        try:
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            if response.status != 200:
                response.read(READ_CHUNK)  # a short error body; the rest is dropped with the connection
                return response.status, None, 0, (response.getheader("message") or "")[:200]

            def refuse(size: int, announced: bool) -> NvdFetchError:
                if announced:
                    return NvdFetchError(f"{where}: the answer is {size:,} bytes, over the cap of "
                                         f"{self.max_bytes:,} bytes (WATCHPOST_NVD_MAX_PAGE_BYTES)")
                return NvdFetchError(f"{where}: the answer passed the cap of {self.max_bytes:,} bytes "
                                     f"(WATCHPOST_NVD_MAX_PAGE_BYTES); refused before reading the rest")

            return 200, *body_to_file(response, max_bytes=self.max_bytes, refuse=refuse, spool_bytes=SPOOL_BYTES), ""
        finally:
            connection.close()
