"""TCP connect scan: which ports of one address are open, closed (refused) or filtered.

The probing runs on raw non-blocking sockets in a worker thread, batched under
``select.poll``: one ``socket``/``connect``/``close`` per port and one ``poll`` per batch.
An asyncio ``open_connection`` per port costs ten times as much in Python overhead and
cannot keep up with nmap on a 65,535-port scan; a thread keeps the event loop free for
the other scanners of the run.

Two loopback traps are handled here: a connect to an unused port in the ephemeral
range can pick that same port as its source and connect to itself (TCP simultaneous
open) — such a "connection" is discarded as closed; and open sockets are closed with
SO_LINGER 0 (a reset) so that tens of thousands of probes leave no TIME_WAIT behind.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from scans.candidates import Coverage, ScanResult
from scans.scanners.base import Scanner, ScanContext, ScannerError, Target, register
from scans.scanners.port_sets import ALL_PORTS, RESERVED_PORTS, parse_ports

OPEN, CLOSED, FILTERED, ERROR = "open", "closed", "filtered", "error"
_LINGER_RESET = struct.pack("ii", 1, 0)
_POLL_DONE = select.POLLOUT | select.POLLERR | select.POLLHUP
# connect() answers that mean "nothing will ever answer from there": counted as filtered like nmap does.
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EACCES, errno.EPERM}


@dataclass(slots=True)
class PortScanOutcome:
    """What the probing found; ``open``/``filtered`` are in scan order, the rest only counted."""

    open: list[int] = field(default_factory=list)
    filtered: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {OPEN: 0, CLOSED: 0, FILTERED: 0, ERROR: 0})
    self_connects: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    untried: int = 0  # ports never probed because the run was stopped
    elapsed: float = 0.0


def probe_ports(
    address: str,
    ports: tuple[int, ...] | list[int],
    *,
    timeout: float = 1.0,
    concurrency: int = 4096,
    rate_limit: float | None = None,
    stop: threading.Event | None = None,
) -> PortScanOutcome:
    """Connect to every port of ``address`` once; blocking, so call it from a thread.

    ``timeout`` is how long a connect may stay unanswered before the port counts as
    filtered; ``concurrency`` caps the sockets in flight (mind ``ulimit -n``);
    ``rate_limit`` caps new connects per second.
    """
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    result = PortScanOutcome()
    counts = result.counts
    poller = select.poll()
    pending: dict[int, tuple[socket.socket, int]] = {}  # fd -> (socket, port)
    started: deque[tuple[float, int]] = deque()  # (connect time, fd), oldest first, for expiry
    concurrency = max(1, concurrency)
    interval = 1.0 / rate_limit if rate_limit else 0.0
    began = time.monotonic()
    next_slot = began
    sock_type = socket.SOCK_STREAM | socket.SOCK_NONBLOCK

    def finish(sock: socket.socket, port: int, code: int) -> None:
        if code == 0:
            try:
                # A loopback self-connect has the same address and port at both ends.
                if sock.getsockname()[:2] == sock.getpeername()[:2]:
                    result.self_connects += 1
                    counts[CLOSED] += 1
                else:
                    counts[OPEN] += 1
                    result.open.append(port)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:  # reset between connect and the check: the port answered, then went away
                counts[CLOSED] += 1
        elif code == errno.ECONNREFUSED:
            counts[CLOSED] += 1
        elif code in _UNREACHABLE:
            counts[FILTERED] += 1
            result.filtered.append(port)
        else:
            counts[ERROR] += 1
            name = errno.errorcode.get(code, str(code))
            result.errors[name] = result.errors.get(name, 0) + 1
        sock.close()

    def reap(wait_ms: int) -> None:
        for fd, events in poller.poll(wait_ms):
            entry = pending.pop(fd, None)
            if entry is None:
                continue
            poller.unregister(fd)
            sock, port = entry
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if events & (select.POLLERR | select.POLLHUP) else 0
            if events & select.POLLHUP and code == 0:
                code = errno.ECONNRESET
            finish(sock, port, code)
        now = time.monotonic()
        while started and (started[0][1] not in pending or started[0][0] + timeout <= now):
            _, fd = started.popleft()
            entry = pending.pop(fd, None)
            if entry is not None:
                poller.unregister(fd)
                sock, port = entry
                counts[FILTERED] += 1
                result.filtered.append(port)
                sock.close()

    index = 0
    total = len(ports)
    while index < total or pending:
        if stop is not None and stop.is_set():
            break
        # Open as many connects as the limits allow, then collect whatever has answered.
        while index < total and len(pending) < concurrency:
            if interval:
                now = time.monotonic()
                if now < next_slot:
                    break
                next_slot = max(next_slot + interval, now - 1.0)
            port = ports[index]
            index += 1
            try:
                sock = socket.socket(family, sock_type)
            except OSError as exc:  # out of descriptors: let the ones in flight finish first
                index -= 1
                if not pending:
                    raise ScannerError(f"cannot open sockets: {exc}") from exc
                break
            code = sock.connect_ex((address, port))
            if code == errno.EINPROGRESS:
                # Loopback answers inside connect(): a refusal is already there to read, which
                # spares the poll registration for the thousands of closed ports. 0 = connected or pending.
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or errno.EINPROGRESS
            if code == errno.EINPROGRESS:
                fd = sock.fileno()
                pending[fd] = (sock, port)
                started.append((time.monotonic(), fd))
                poller.register(fd, _POLL_DONE)
            elif code == errno.EADDRNOTAVAIL:  # no free source port right now: retry this port later
                sock.close()
                index -= 1
                break
            elif code == errno.ECONNREFUSED:
                counts[CLOSED] += 1
                sock.close()
            else:
                finish(sock, port, code)
        if pending:
            full = len(pending) >= concurrency or index >= total
            wait = 10 if full else 0
            if interval and not full:
                wait = max(0, int((next_slot - time.monotonic()) * 1000))
            reap(wait)
        elif interval and index < total:
            time.sleep(max(0.0, next_slot - time.monotonic()))

    for sock, _port in pending.values():
        sock.close()
    result.untried = total - index + len(pending)
    result.elapsed = time.monotonic() - began
    return result


async def scan_ports(
    address: str,
    ports: tuple[int, ...] | list[int],
    *,
    timeout: float = 1.0,
    concurrency: int = 4096,
    rate_limit: float | None = None,
    workers: int | None = None,
) -> PortScanOutcome:
    """Probe in worker threads (never on the event loop) and stop them if the caller is cancelled.

    Large sets are split over two threads: on loopback the cost is the kernel's work inside
    ``connect()``, which runs without the GIL, so two cores finish a full scan in about half the time.
    """
    stop = threading.Event()
    workers = workers or (2 if len(ports) > 8192 else 1)
    slices = [tuple(ports[i::workers]) for i in range(workers)]
    share = max(1, concurrency // workers)
    rate = rate_limit / workers if rate_limit else None
    try:
        parts = await asyncio.gather(
            *(
                asyncio.to_thread(probe_ports, address, part, timeout=timeout, concurrency=share, rate_limit=rate, stop=stop)
                for part in slices
            )
        )
    finally:
        stop.set()
    return merge_outcomes(parts)


def merge_outcomes(parts: list[PortScanOutcome]) -> PortScanOutcome:
    merged = PortScanOutcome()
    for part in parts:
        merged.open += part.open
        merged.filtered += part.filtered
        for key, value in part.counts.items():
            merged.counts[key] += value
        for key, value in part.errors.items():
            merged.errors[key] = merged.errors.get(key, 0) + value
        merged.self_connects += part.self_connects
        merged.untried += part.untried
        merged.elapsed = max(merged.elapsed, part.elapsed)
    return merged


@register
class PortScanner(Scanner):
    name = "portscan"
    version = "1.0"
    description = "TCP connect scan telling open, closed (refused) and filtered (no answer) ports apart."
    options = {
        "ports": (str, "top1000"),  # top100, top1000, all, or "22,80,8000-8100"
        "timeout": (float, None),  # seconds before an unanswered connect is filtered; default: context
        "concurrency": (int, None),
        "rate_limit": (float, None),
    }
    default_budget = 300.0

    async def scan(self, target: Target, options: dict[str, Any], context: ScanContext) -> ScanResult:
        result = self.new_result(target, options)
        try:
            ports = parse_ports(options["ports"])
        except ValueError as exc:
            raise ScannerError(f"portscan: {exc}") from None
        outcome = await scan_ports(
            target.address,
            ports,
            timeout=options["timeout"] or context.connect_timeout,
            concurrency=options["concurrency"] or max(context.concurrency, 4096 if len(ports) > 1000 else 0),
            rate_limit=options["rate_limit"] if options["rate_limit"] is not None else context.rate_limit,
        )
        record_outcome(result, ports, outcome)
        return result


def record_outcome(result: ScanResult, ports: tuple[int, ...], outcome: PortScanOutcome) -> None:
    """Store an outcome compactly: counts by outcome, and only the open and filtered ports listed."""
    result.open_ports = sorted(outcome.open)
    result.complete = outcome.untried == 0 and outcome.counts[ERROR] == 0
    if outcome.untried:
        result.error = f"{outcome.untried} port(s) not probed: the run was stopped"
    elif outcome.counts[ERROR]:
        result.error = f"{outcome.counts[ERROR]} connect error(s): {outcome.errors}"
    result.attempts = [{"port": p, "probe": "tcp-connect", "outcome": "ok"} for p in result.open_ports]
    result.attempts += [{"port": p, "probe": "tcp-connect", "outcome": "timeout"} for p in sorted(outcome.filtered)]
    result.data = {
        "ports_scanned": len(ports),
        "counts": dict(outcome.counts),
        "filtered_ports": sorted(outcome.filtered),
        "self_connects_discarded": outcome.self_connects,
        "errors": outcome.errors,
        "probe_seconds": round(outcome.elapsed, 4),
    }
    if result.complete:
        whole = len(set(ports) | RESERVED_PORTS) == len(ALL_PORTS)
        result.coverage = [Coverage(host=result.target, ports=() if whole else tuple(sorted(ports)), whole_host=whole)]
