"""A TCP forwarder on loopback that a test can cut and restore, to drop a relay's connections.

Cutting aborts every open connection and stops listening (new dials are refused), as a relay
restart or a network outage looks to a client; restoring listens on the same port again. It
counts the bytes it forwards each way, which is what a client's traffic costs on the wire. Given a
NIP-11 document, it answers the relay's information requests itself (LocalRelay serves none).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self

from bigbrotr.devstack.process import free_port

_CHUNK = 65_536


class CuttableProxy:
    """`async with CuttableProxy(port) as proxy:` forwards `proxy.port` to `target_port`."""

    def __init__(
        self,
        target_port: int,
        target_host: str = "127.0.0.1",
        *,
        nip11: Mapping[str, object] | None = None,
    ) -> None:
        self.target = (target_host, target_port)
        self.nip11 = nip11
        self.port = free_port()
        self.connections = 0
        self.bytes_to_target = 0
        self.bytes_from_target = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        await self.restore()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.cut()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = b""
        if self.nip11 is not None:
            with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                head = await reader.readuntil(b"\r\n\r\n")
            if _asks_nip11(head):
                body = json.dumps(self.nip11).encode()
                writer.write(_NIP11_HEAD % len(body) + body)
                with contextlib.suppress(OSError):
                    await writer.drain()
                writer.transport.abort()
                return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, upstream_writer})
        upstream_writer.write(head)
        self._count_to_target(len(head))
        try:
            await asyncio.gather(
                _pipe(reader, upstream_writer, self._count_to_target),
                _pipe(upstream_reader, writer, self._count_from_target),
            )
        finally:
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                end.transport.abort()

    def _count_to_target(self, size: int) -> None:
        self.bytes_to_target += size

    def _count_from_target(self, size: int) -> None:
        self.bytes_from_target += size


_NIP11_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/nostr+json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n"
)


def _asks_nip11(head: bytes) -> bool:
    lowered = head.lower()
    return b"upgrade: websocket" not in lowered and b"application/nostr+json" in lowered


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: Callable[[int], None]
) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(_CHUNK):
            count(len(chunk))
            writer.write(chunk)
            await writer.drain()
    writer.transport.abort()
