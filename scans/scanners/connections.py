"""Where scanners open connections, within each node's budget (``orgs.budgets``).

Every new connection to a node with a budget takes, first, a place among the node's
connections at once (a count shared by the threads of this process, given back when the
connection closes), then a token of new connections per second. Tokens are counted per
wall-clock second of one clock: Redis's when ``REDIS_URL`` is set (one Lua script, atomic, so
every worker of a zone draws from the same count), this process's otherwise. A node in a zone
with a budget draws from the node's count and the zone's together.

A process takes tokens a few at a time and spends them only within the second they were
counted in, less a guard at its end: no node ever sees more new connections in one second
than its budget, whichever process or thread opened them, and a connection made just before
a second turns is not counted in the next one. Tokens left when a second ends are dropped.

Nodes without a budget (the default) cost one dictionary lookup per target: the port sweep
(``portscan.sweep``) resolves its hosts' budgets once and checks them inline per port; the
asyncio scanners call :func:`open_connection` and :func:`datagram_endpoint` here instead of
asyncio's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import redis
import structlog
from django.conf import settings

logger = structlog.get_logger(__name__)

GUARD_SECONDS = 0.02  # no token is spent this close to the end of its second
_POLL_SECONDS = 0.005


class LocalCounter:
    """New connections per key and wall-clock second, counted in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[str, tuple[int, int]] = {}

    def take(self, limits: tuple[tuple[str, int], ...], wanted: int) -> tuple[int, float]:
        """Up to ``wanted`` tokens from every key's count at once; returns (granted, seconds left in the second)."""
        now = time.time()
        second = int(now)
        with self._lock:
            grant = wanted
            for key, limit in limits:
                at, used = self._used.get(key, (second, 0))
                grant = min(grant, limit - (used if at == second else 0))
            grant = max(0, grant)
            if grant:
                for key, _ in limits:
                    at, used = self._used.get(key, (second, 0))
                    self._used[key] = (second, (used if at == second else 0) + grant)
        return grant, second + 1 - now


# KEYS: the budgets' keys; ARGV: wanted, then each key's limit. The second is Redis's own (TIME), so
# workers on machines whose clocks differ still count the same second.
_TAKE_SCRIPT = """
local now = redis.call('TIME')
local second = now[1]
local grant = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key .. ':' .. second) or '0')
  local left = tonumber(ARGV[i + 1]) - used
  if left < grant then grant = left end
end
if grant < 0 then grant = 0 end
if grant > 0 then
  for _, key in ipairs(KEYS) do
    redis.call('INCRBY', key .. ':' .. second, grant)
    redis.call('EXPIRE', key .. ':' .. second, 5)
  end
end
return {grant, 1000000 - tonumber(now[2])}
"""


class RedisCounter:
    """The same count in Redis, shared by every process and machine using it."""

    PREFIX = "watchpost:budget:"

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = None
        self._script = None
        self._pid = 0
        self._fallback = LocalCounter()
        self._warned = False

    def _take_script(self):
        # A client per process: a forked worker child must not share its parent's sockets.
        if self._script is None or self._pid != os.getpid():
            self._client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self._script, self._pid = self._client.register_script(_TAKE_SCRIPT), os.getpid()
        return self._script

    def take(self, limits: tuple[tuple[str, int], ...], wanted: int) -> tuple[int, float]:
        try:
            grant, micros = self._take_script()(keys=[self.PREFIX + key for key, _ in limits],
                                                args=[wanted, *(limit for _, limit in limits)])
        except Exception:  # noqa: BLE001 - Redis away: keep to the budget in this process rather than stop scanning
            if not self._warned:
                logger.warning("budgets.redis_unavailable", url=self.url.split("@")[-1], exc_info=True)
                self._warned = True
            return self._fallback.take(limits, wanted)
        return int(grant), int(micros) / 1e6


_counter: LocalCounter | RedisCounter | None = None
_counter_lock = threading.Lock()


def counter() -> LocalCounter | RedisCounter:
    """Redis's count when the deployment has Redis, else this process's."""
    global _counter
    if _counter is None:
        with _counter_lock:
            if _counter is None:
                url = getattr(settings, "REDIS_URL", "")
                _counter = RedisCounter(url) if url else LocalCounter()
    return _counter


class Budget:
    """One node's budget in this process: its per-second tokens (with its zone's) and its places at once."""

    def __init__(self, *, limits: tuple[tuple[str, int], ...], at_once: int | None,
                 source: LocalCounter | RedisCounter | None = None) -> None:
        self.limits, self.at_once = limits, at_once
        self.rate = min((limit for _, limit in limits), default=None)
        # A few tokens per count taken: one round trip to Redis for each, at twenty a second at most.
        self.chunk = max(1, min(512, (self.rate or 1) // 20))
        self._source = source
        self._lock = threading.Lock()
        self._tokens = 0
        self._valid_until = 0.0  # monotonic: the end of the tokens' second, less the guard
        self._denied_until = 0.0
        self._open = 0

    def key(self) -> tuple:
        return self.limits, self.at_once

    # -- new connections per second --

    def take_token(self) -> bool:
        """One new connection's token now, or False (then :meth:`wait_seconds` says for how long to wait)."""
        if not self.limits:
            return True
        with self._lock:
            now = time.monotonic()
            if self._tokens and now < self._valid_until:
                self._tokens -= 1
                return True
            if now < self._denied_until:
                return False
            granted, left = (self._source or counter()).take(self.limits, self.chunk)
            end = now + left
            self._valid_until = end - GUARD_SECONDS
            if granted and time.monotonic() < self._valid_until:
                self._tokens = granted - 1
                return True
            self._tokens, self._denied_until = 0, end
            return False

    def wait_seconds(self) -> float:
        return max(0.0, self._denied_until - time.monotonic())

    # -- connections at once --

    def take_place(self) -> bool:
        if self.at_once is None:
            return True
        with self._lock:
            if self._open >= self.at_once:
                return False
            self._open += 1
            return True

    def give_place(self) -> None:
        if self.at_once is not None:
            with self._lock:
                self._open -= 1

    async def acquire(self) -> None:
        """Wait for a place and a token, in that order: a token is spent at once, never held while waiting."""
        while not self.take_place():
            await asyncio.sleep(_POLL_SECONDS)
        try:
            while not self.take_token():
                await asyncio.sleep(max(_POLL_SECONDS, self.wait_seconds()))
        except BaseException:
            self.give_place()
            raise


# Budgets by node, shared by every job of this process that scans the node; replaced when its limits change.
_budgets: dict[Any, Budget] = {}
_budgets_lock = threading.Lock()


def budget_for_node(*, node_id: int, new_per_second: int | None, at_once: int | None, zone_id: int | None = None,
                    zone_new_per_second: int | None = None) -> Budget | None:
    """The process's budget object for a node (None when neither it nor its zone has any limit)."""
    limits = []
    if new_per_second:
        limits.append((f"node:{node_id}", int(new_per_second)))
    if zone_id is not None and zone_new_per_second:
        limits.append((f"zone:{zone_id}", int(zone_new_per_second)))
    if not limits and not at_once:
        return None
    wanted = (tuple(limits), at_once)
    with _budgets_lock:
        budget = _budgets.get(node_id)
        if budget is None or budget.key() != wanted:
            budget = _budgets[node_id] = Budget(limits=tuple(limits), at_once=at_once)
        return budget


# The budgets of the targets being scanned in this context, by address (a job's run sets it).
_active: ContextVar[dict[str, Budget] | None] = ContextVar("watchpost_budgets", default=None)


@contextlib.contextmanager
def budgets_active(budgets: dict[str, Budget]) -> Iterator[dict[str, Budget]]:
    """Within this block (and the tasks and threads it starts), connections to these addresses keep to their budgets."""
    token = _active.set(budgets)
    try:
        yield budgets
    finally:
        _active.reset(token)


def budget_bind(address: str, budget: Budget) -> None:
    """Connections to ``address`` in this context keep to ``budget`` (inside :func:`budgets_active`)."""
    active = _active.get()
    if active is None:
        raise RuntimeError("budget_bind() outside budgets_active()")
    active[address] = budget


def budget_for(address: str) -> Budget | None:
    active = _active.get()
    return active.get(address) if active else None


class _Placed(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol, giving the node's place back when the connection is lost."""

    def __init__(self, *args, budget: Budget, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._budget = budget

    def connection_lost(self, exc) -> None:
        budget, self._budget = self._budget, None
        if budget is not None:
            budget.give_place()
        super().connection_lost(exc)


async def open_connection(host: str, port: int, *, timeout: float | None = None, limit: int = 2 ** 16,
                          **kwargs: Any):
    """``asyncio.open_connection`` under ``timeout``, within the host's budget when it has one.

    Waiting for the budget is not part of ``timeout``: a node allowed few connections a second
    is slow to scan, not silent (the job's own time limit still bounds the whole).
    """
    budget = budget_for(host)
    if budget is None:
        return await asyncio.wait_for(asyncio.open_connection(host, port, limit=limit, **kwargs), timeout)
    await budget.acquire()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = _Placed(reader, loop=loop, budget=budget)
    try:
        transport, _ = await asyncio.wait_for(loop.create_connection(lambda: protocol, host, port, **kwargs), timeout)
    except BaseException:
        if protocol._budget is not None:  # never connected: connection_lost will not give the place back
            protocol._budget = None
            budget.give_place()
        raise
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def datagram_endpoint(protocol_factory, *, remote_addr: tuple[str, int], **kwargs: Any):
    """``loop.create_datagram_endpoint`` to one address: a UDP exchange counts as a new connection."""
    budget = budget_for(remote_addr[0])
    if budget is not None:
        while not budget.take_token():
            await asyncio.sleep(max(_POLL_SECONDS, budget.wait_seconds()))
    return await asyncio.get_running_loop().create_datagram_endpoint(protocol_factory, remote_addr=remote_addr,
                                                                     **kwargs)
