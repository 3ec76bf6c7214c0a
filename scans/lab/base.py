"""The lab: many asyncio servers on loopback addresses, served by one background thread.

Usage::

    with Lab() as lab:
        svc = lab.serve("127.0.5.1", 0, handler)   # handler(reader, writer) coroutine
        ...connect to svc.address, svc.port...

Only loopback addresses are accepted: the lab refuses to bind anywhere else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(slots=True)
class LabService:
    name: str
    address: str
    port: int
    tls: bool = False
    server: asyncio.base_events.Server | None = field(default=None, repr=False)
    transport: asyncio.DatagramTransport | None = field(default=None, repr=False)  # a UDP service's socket


def ensure_loopback(address: str) -> None:
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"the lab serves on loopback addresses only, not {address}")


class Lab:
    """Runs servers on a private event loop in a daemon thread; ``close()`` stops them all."""

    def __init__(self) -> None:
        self.services: list[LabService] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lab", daemon=True)
        self._thread.start()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, coro: Awaitable, timeout: float = 30.0):
        """Run a coroutine on the lab's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def serve(
        self,
        address: str,
        port: int,
        handler: Handler,
        *,
        name: str = "",
        ssl_context: ssl.SSLContext | None = None,
    ) -> LabService:
        """Listen on (address, port); port 0 picks a free one. Returns the bound service."""
        ensure_loopback(address)

        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # A client that hangs up early must not leave tracebacks in test output.
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
                pass
            finally:
                writer.close()

        async def start() -> asyncio.base_events.Server:
            return await asyncio.start_server(
                guarded, host=address, port=port, ssl=ssl_context, reuse_address=True, backlog=512
            )

        server = self.call(start())
        bound_port = server.sockets[0].getsockname()[1]
        service = LabService(name or handler.__name__, address, bound_port, ssl_context is not None, server)
        self.services.append(service)
        return service

    def serve_datagram(self, address: str, port: int, protocol_factory: Callable[[], asyncio.DatagramProtocol], *,
                       name: str = "") -> LabService:
        """Listen for UDP datagrams on (address, port); port 0 picks a free one."""
        ensure_loopback(address)

        async def start() -> asyncio.DatagramTransport:
            transport, _ = await self._loop.create_datagram_endpoint(protocol_factory, local_addr=(address, port))
            return transport

        transport = self.call(start())
        bound_port = transport.get_extra_info("sockname")[1]
        service = LabService(name or "udp", address, bound_port, transport=transport)
        self.services.append(service)
        return service

    def stop(self, service: LabService) -> None:
        async def shut() -> None:
            service.server.close()
            await service.server.wait_closed()

        if service.server is not None:
            self.call(shut(), timeout=5)
            service.server = None
        if service.transport is not None:
            self._loop.call_soon_threadsafe(service.transport.close)
            service.transport = None
        if service in self.services:
            self.services.remove(service)

    def close(self) -> None:
        if not self._loop.is_running():
            return

        async def shut_all() -> None:
            for service in self.services:
                if service.server is not None:
                    service.server.close()
                if service.transport is not None:
                    service.transport.close()
            # Cancel handlers still running (tarpits, slow clients) so close() never hangs.
            current = asyncio.current_task()
            for task in asyncio.all_tasks():
                if task is not current:
                    task.cancel()

        try:
            self.call(shut_all(), timeout=5)
        finally:
            self.services.clear()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
