"""The NVD client's manners: a rolling rate limit on an injected clock, and jittered backoff."""

from __future__ import annotations

import random

import pytest

from scans.cve.nvd_client import NvdClient, RateLimiter, backoff_delay


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_with_a_key_fifty_requests_go_at_once_and_the_51st_waits_for_the_window():
    clock = FakeClock()
    limiter = RateLimiter.for_nvd(api_key="k", clock=clock.now, sleep=clock.sleep)

    for _ in range(50):
        limiter.acquire()
    assert clock.slept == []
    limiter.acquire()

    assert clock.slept == [30.0]


def test_the_window_rolls_rather_than_resetting():
    clock = FakeClock()
    limiter = RateLimiter(5, 30, clock=clock.now, sleep=clock.sleep)
    for second in (0, 10, 20, 21, 22):
        clock.t = second
        limiter.acquire()

    clock.t = 25
    limiter.acquire()  # the request of second 0 ages out at 30

    assert clock.slept == [5.0] and clock.t == 30


def test_a_mirror_without_limit_never_waits():
    clock = FakeClock()
    limiter = RateLimiter.for_nvd(api_key="", unlimited=True, clock=clock.now, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
    assert clock.slept == []


def test_backoff_grows_exponentially_up_to_its_cap_with_full_jitter():
    rng = random.Random(3)
    delays = [[backoff_delay(attempt, base=2, cap=60, rng=rng) for _ in range(200)] for attempt in range(8)]

    for attempt, seen in enumerate(delays):
        assert 0 <= min(seen) and max(seen) <= min(60, 2 * 2 ** attempt)
    assert max(delays[3]) > 8  # attempt 3 reaches past attempt 2's ceiling


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError, match="http"):
        NvdClient("ftp://example.invalid/cves", limiter=RateLimiter(None), max_bytes=1)
