"""TCP connect scan: which ports of one address, or of many, are open, closed (refused) or filtered.

The probing runs on raw non-blocking sockets in worker threads, batched under
``select.poll``: one ``socket``/``connect``/``close`` per port and one ``poll`` per batch.
An asyncio ``open_connection`` per port costs ten times as much in Python overhead and
cannot keep up with nmap; threads keep the event loop free for the other scanners of the
run (and, in discovery, for identifying the open ports while the sweep goes on).

A sweep covers many hosts at once (:func:`sweep`): the threads draw (host, port) work from
one cursor, host after host, and every socket in flight holds a slot of one budget per
process (:data:`PROCESS_BUDGET`), so all the discovery jobs a worker process runs share
one concurrency limit instead of each batch of nodes bringing its own.

Two loopback traps are handled here: a connect to an unused port in the ephemeral
range can pick that same port as its source and connect to itself (TCP simultaneous
open) — such a "connection" is discarded as closed; and open sockets are closed with
SO_LINGER 0 (a reset) so that tens of thousands of probes leave no TIME_WAIT behind.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import ipaddress
import resource
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scans.findings.candidates import Coverage, ScanResult
from scans.scanners.base import ScanContext, Scanner, ScannerError, Target, register
from scans.scanners.connections import Budget, budget_for
from scans.scanners.port_sets import ALL_PORTS, RESERVED_PORTS, parse_ports

OPEN, CLOSED, FILTERED, ERROR = "open", "closed", "filtered", "error"
_LINGER_RESET = struct.pack("ii", 1, 0)
_POLL_DONE = select.POLLOUT | select.POLLERR | select.POLLHUP
# connect() answers that mean "nothing will ever answer from there": counted as filtered like nmap does.
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EACCES, errno.EPERM}
_FD_RESERVE = 256  # descriptors left for the database, the broker, logs and identification


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


def raise_fd_limit() -> int:
    """Raise this process's soft descriptor limit to its hard limit; returns the soft limit now in force.

    A fleet sweep keeps thousands of sockets in flight; the usual soft limit (1024) would
    turn most of them into "cannot open sockets" errors.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


class SocketBudget:
    """Sockets in flight allowed at once in this process, shared by every sweep thread.

    Threads take slots in chunks and give back what they do not hold sockets for after each
    poll round, so the cost is two lock operations per round, not per port.
    """

    def __init__(self, size: int) -> None:
        self.size = self.free = max(1, size)
        self.peak = 0  # most slots ever held at once: what the sweeps of this process really used
        self._cond = threading.Condition()

    def take(self, wanted: int) -> int:
        with self._cond:
            granted = max(0, min(wanted, self.free))
            self.free -= granted
            self.peak = max(self.peak, self.size - self.free)
            return granted

    def give(self, count: int) -> None:
        if count > 0:
            with self._cond:
                self.free += count
                self._cond.notify_all()

    def wait(self, seconds: float) -> None:
        with self._cond:
            if not self.free:
                self._cond.wait(seconds)

    def resize(self, size: int) -> None:
        with self._cond:
            size = max(1, size)
            self.free += size - self.size
            self.size = size
            self._cond.notify_all()


# One per process: a Celery worker child runs all its discovery under this limit.
PROCESS_BUDGET = SocketBudget(4096)


@dataclass(slots=True)
class _Host:
    address: str
    ports: Sequence[int]
    family: int
    allowance: Budget | None = None  # the node's connection budget (connections.Budget), if it has one


class _Sweep:
    """State shared by the threads of one sweep: the cursor over the work, and the outcomes."""

    def __init__(self, hosts: list[_Host], stop: threading.Event, on_open, on_host_done) -> None:
        self.hosts, self.stop = hosts, stop
        self.outcomes = [PortScanOutcome() for _ in hosts]
        self.remaining = [len(h.ports) for h in hosts]
        self.on_open, self.on_host_done = on_open, on_host_done
        self.lock = threading.Lock()
        self.began = time.monotonic()
        self.error: BaseException | None = None
        self._host = self._index = 0

    def take(self, wanted: int) -> list[tuple[int, int]]:
        """The next ``wanted`` (host, port) pairs, host after host, so hosts finish (and are identified) early."""
        out: list[tuple[int, int]] = []
        with self.lock:
            while len(out) < wanted and self._host < len(self.hosts):
                ports = self.hosts[self._host].ports
                end = min(len(ports), self._index + wanted - len(out))
                out.extend((self._host, p) for p in ports[self._index:end])
                self._index = end
                if end >= len(ports):
                    self._host, self._index = self._host + 1, 0
        return out

    def merge(self, local: dict[int, PortScanOutcome], resolved: dict[int, int]) -> None:
        """Add one thread's answers of the last poll round; report the hosts that are now complete.

        Threads count locally and merge once per round: a lock per port would have them queue
        on each other at every connect.
        """
        done = []
        with self.lock:
            now = time.monotonic()
            for h, part in local.items():
                outcome = self.outcomes[h]
                outcome.open += part.open
                outcome.filtered += part.filtered
                for key, value in part.counts.items():
                    outcome.counts[key] += value
                for key, value in part.errors.items():
                    outcome.errors[key] = outcome.errors.get(key, 0) + value
                outcome.self_connects += part.self_connects
                self.remaining[h] -= resolved[h]
                if self.remaining[h] == 0:
                    outcome.elapsed = now - self.began
                    done.append(h)
        local.clear()
        resolved.clear()
        if self.on_host_done is not None:
            for h in done:
                self.on_host_done(h, self.outcomes[h])


def sweep(
    hosts: Sequence[tuple[str, Sequence[int]]],
    *,
    timeout: float = 1.0,
    concurrency: int | None = None,
    rate_limit: float | None = None,
    threads: int = 1,
    stop: threading.Event | None = None,
    on_open: Callable[[int, int], None] | None = None,
    on_host_done: Callable[[int, PortScanOutcome], None] | None = None,
    budget: SocketBudget | None = None,
) -> list[PortScanOutcome]:
    """Connect to every port of every host once; blocking, so call it from a thread.

    ``timeout`` is how long a connect may stay unanswered before the port counts as
    filtered; ``concurrency`` caps this sweep's sockets in flight, within ``budget`` (the
    process's, by default); ``rate_limit`` caps new connects per second. ``on_open(host_index,
    port)`` is called (from a sweep thread) as soon as a port answers, ``on_host_done(host_index,
    outcome)`` once every port of a host has its answer. Returns one outcome per host, in order.
    """
    stop = stop or threading.Event()
    budget = budget or PROCESS_BUDGET
    state = _Sweep([_Host(a, p, socket.AF_INET6 if ipaddress.ip_address(a).version == 6 else socket.AF_INET,
                          budget_for(a)) for a, p in hosts], stop, on_open, on_host_done)
    for h, host in enumerate(state.hosts):
        if not host.ports and on_host_done is not None:
            on_host_done(h, state.outcomes[h])
    threads = max(1, min(threads, sum(len(h.ports) for h in state.hosts) // 256 or 1))
    share = max(1, (concurrency or budget.size) // threads)
    interval = threads / rate_limit if rate_limit else 0.0
    if threads == 1:
        _sweep_thread(state, budget, share, timeout, interval)
    else:
        workers = [threading.Thread(target=_sweep_thread, args=(state, budget, share, timeout, interval),
                                    name=f"sweep-{n}", daemon=True) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    if state.error is not None:
        raise ScannerError(f"cannot open sockets: {state.error}") from state.error
    for h, outcome in enumerate(state.outcomes):
        outcome.untried = state.remaining[h]
        if outcome.untried:
            outcome.elapsed = time.monotonic() - state.began
    return state.outcomes


def _sweep_thread(state: _Sweep, budget: SocketBudget, share: int, timeout: float, interval: float) -> None:
    hosts, stop, on_open = state.hosts, state.stop, state.on_open
    local: dict[int, PortScanOutcome] = {}  # this round's answers, merged into the sweep's after it
    resolved: dict[int, int] = {}
    poller = select.poll()
    pending: dict[int, tuple[socket.socket, int, int]] = {}  # fd -> (socket, host, port)
    started: deque[tuple[float, int]] = deque()  # (connect time, fd), oldest first, for expiry
    todo: deque[tuple[int, int]] = deque()
    held = 0  # budget slots this thread holds; sockets in flight never exceed it
    next_slot = time.monotonic()
    sock_type = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
    # The C socket type: socket.socket's Python wrapper (__init__, close, reference counting
    # for makefile) costs more per port than the connect itself. No file objects are made here.
    new_socket = _socket.socket
    # Sockets refused on the spot, kept for the next ports: Linux lets a socket whose connect
    # failed connect again, which spares a socket() and a close() per closed port (much of the
    # kernel's time per probe on loopback, where nearly every port is closed).
    refused: dict[int, list] = {socket.AF_INET: [], socket.AF_INET6: []}
    # Ports of hosts out of budget for now (no token this second, or no place at once), by host, and
    # when to try them again; the thread goes on with other hosts' ports meanwhile.
    parked: dict[int, deque[tuple[int, int]]] = {}
    retry_parked_at = 0.0

    def park(h: int, port: int, allowance: Budget) -> None:
        nonlocal retry_parked_at
        queue = parked.get(h)
        if queue is None:
            queue = parked[h] = deque()
        queue.append((h, port))
        retry_parked_at = time.monotonic() + max(0.002, min(allowance.wait_seconds(), 0.05))

    def unpark() -> None:
        """Put back, for each parked host whose budget may allow it again, about a second's worth of its ports."""
        for h in list(parked):
            allowance, queue = hosts[h].allowance, parked[h]
            if allowance.wait_seconds() > 0:
                continue
            for _ in range(min(len(queue), max(allowance.rate or 0, allowance.at_once or 0, 1))):
                todo.append(queue.popleft())
            if not queue:
                del parked[h]

    def resolve(h: int, port: int, status: str, code: int = 0, self_connect: bool = False) -> None:
        allowance = hosts[h].allowance
        if allowance is not None:
            allowance.give_place()
        outcome = local.get(h)
        if outcome is None:
            outcome = local[h] = PortScanOutcome()
            resolved[h] = 0
        resolved[h] += 1
        outcome.counts[status] += 1
        if status == CLOSED:
            outcome.self_connects += self_connect
        elif status == OPEN:
            outcome.open.append(port)
            if on_open is not None:
                on_open(h, port)
        elif status == FILTERED:
            outcome.filtered.append(port)
        else:
            name = errno.errorcode.get(code, str(code))
            outcome.errors[name] = outcome.errors.get(name, 0) + 1

    def finish(sock: socket.socket, h: int, port: int, code: int) -> None:
        if code == 0:
            try:
                # A loopback self-connect has the same address and port at both ends.
                if sock.getsockname()[:2] == sock.getpeername()[:2]:
                    resolve(h, port, CLOSED, self_connect=True)
                else:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                    sock.close()  # before the callback: identification connects on its own socket
                    resolve(h, port, OPEN)
            except OSError:  # reset between connect and the check: the port answered, then went away
                resolve(h, port, CLOSED)
        elif code == errno.ECONNREFUSED:
            resolve(h, port, CLOSED)
        elif code in _UNREACHABLE:
            resolve(h, port, FILTERED)
        else:
            resolve(h, port, ERROR, code)
        sock.close()

    def reap(wait_ms: int) -> None:
        for fd, events in poller.poll(wait_ms):
            entry = pending.pop(fd, None)
            if entry is None:
                continue
            poller.unregister(fd)
            sock, h, port = entry
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if events & (select.POLLERR | select.POLLHUP) else 0
            if events & select.POLLHUP and code == 0:
                code = errno.ECONNRESET
            finish(sock, h, port, code)
        now = time.monotonic()
        while started and (started[0][1] not in pending or started[0][0] + timeout <= now):
            _, fd = started.popleft()
            entry = pending.pop(fd, None)
            if entry is not None:
                poller.unregister(fd)
                sock, h, port = entry
                sock.close()
                resolve(h, port, FILTERED)

    try:
        while not stop.is_set():
            if parked and time.monotonic() >= retry_parked_at:
                unpark()
            if not todo:
                todo.extend(state.take(256))
                if not todo and not pending and not parked:
                    break
            if todo and held < share:
                held += budget.take(share - held)
            # Open as many connects as the limits allow, then collect whatever has answered.
            while todo and len(pending) < held:
                if interval:
                    now = time.monotonic()
                    if now < next_slot:
                        break
                    next_slot = max(next_slot + interval, now - 1.0)
                h, port = todo.popleft()
                host = hosts[h]
                allowance = host.allowance
                if allowance is not None:
                    # A place among the node's connections at once, then this second's token: the connect
                    # follows at once, so it lands in the second it was counted in.
                    if not allowance.take_place():
                        park(h, port, allowance)
                        continue
                    if not allowance.take_token():
                        allowance.give_place()
                        park(h, port, allowance)
                        continue
                spare = refused[host.family]
                if spare:
                    sock = spare.pop()
                else:
                    try:
                        sock = new_socket(host.family, sock_type)
                    except OSError as exc:  # out of descriptors: let the ones in flight finish first
                        if allowance is not None:
                            allowance.give_place()
                        todo.appendleft((h, port))
                        if not pending:
                            state.error = exc
                            stop.set()
                        break
                target = (host.address, port)
                code = sock.connect_ex(target)
                if code == errno.ECONNABORTED:  # a refused socket's next connect only resets it: connect again
                    code = sock.connect_ex(target)
                if code == errno.EINPROGRESS:
                    # Loopback answers inside connect(): asking again reads the answer (refused, or
                    # connected), which spares the poll registration for the thousands of closed ports.
                    code = sock.connect_ex(target)
                    if code == errno.EALREADY:
                        code = errno.EINPROGRESS
                    elif code == errno.EISCONN:
                        code = 0
                if code == errno.EINPROGRESS:
                    fd = sock.fileno()
                    pending[fd] = (sock, h, port)
                    started.append((time.monotonic(), fd))
                    poller.register(fd, _POLL_DONE)
                elif code == errno.EADDRNOTAVAIL:  # no free source port right now: retry this port later
                    sock.close()
                    if allowance is not None:
                        allowance.give_place()
                    todo.appendleft((h, port))
                    if not pending:
                        time.sleep(0.01)
                    break
                elif code == errno.ECONNREFUSED:
                    if len(spare) < 16:
                        spare.append(sock)
                    else:
                        sock.close()
                    resolve(h, port, CLOSED)
                else:
                    finish(sock, h, port, code)
            if pending:
                full = len(pending) >= held or not todo
                wait = 10 if full else 0
                if interval and not full:
                    wait = max(0, int((next_slot - time.monotonic()) * 1000))
                reap(wait)
            elif todo and not held:
                budget.wait(0.05)  # other sweeps hold the whole budget
            elif interval and todo:
                time.sleep(max(0.0, next_slot - time.monotonic()))
            elif parked and not todo:
                time.sleep(max(0.0, min(0.05, retry_parked_at - time.monotonic())))
            if resolved:
                state.merge(local, resolved)
            # Give back the slots we hold no socket for, so other sweeps of this process can use them.
            spare = held - len(pending)
            if spare > 0 and (not todo or spare > 64):
                budget.give(spare)
                held -= spare
    finally:
        for sock, h, _port in pending.values():
            sock.close()
            if hosts[h].allowance is not None:
                hosts[h].allowance.give_place()
        for sock in refused[socket.AF_INET] + refused[socket.AF_INET6]:
            sock.close()
        budget.give(held)
        if resolved:
            state.merge(local, resolved)


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

    Large sets are swept by two threads: on loopback the cost is the kernel's work inside
    ``connect()``, which runs without the GIL, so a second core shares a full scan's work.
    """
    stop = threading.Event()
    try:
        outcomes = await asyncio.to_thread(sweep, [(address, ports)], timeout=timeout, concurrency=concurrency,
                                           rate_limit=rate_limit, stop=stop,
                                           threads=workers or (2 if len(ports) > 8192 else 1))
    finally:
        stop.set()
    return outcomes[0]


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
