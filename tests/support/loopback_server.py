"""A TCP server on a free loopback port, closed with every connection it accepted.

The tests' small HTTP servers (NIP-11 cases, the OTLP collector) differ only in what they answer:
a subclass implements `_serve` for one connection.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self


class LoopbackServer:
    """`async with Subclass() as server:` listens on `server.port` until the block ends."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            for client in self._clients:
                client.transport.abort()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
