"""A TLS front for a loopback relay: `wss://localhost:PORT` reaches a real relay behind it.

The certificate comes from a test CA (trustme), so a test chooses whether the client trusts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trustme


@dataclass(frozen=True)
class TlsFront:
    url: str
    host_port: str
    ca: trustme.CA
    certificate_pem: bytes


@asynccontextmanager
async def tls_front(target_host_port: str) -> AsyncIterator[TlsFront]:
    """Serve TLS on a free loopback port, certified for `localhost`, and pipe to the target."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    host, port = target_host_port.rsplit(":", 1)
    clients: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        clients.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        clients.add(upstream_writer)
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    listening = int(server.sockets[0].getsockname()[1])
    try:
        yield TlsFront(
            url=f"wss://localhost:{listening}",
            host_port=f"localhost:{listening}",
            ca=ca,
            certificate_pem=leaf.cert_chain_pems[0].bytes(),
        )
    finally:
        server.close()
        for client in clients:
            client.transport.abort()
        await server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError, ssl.SSLError):
            writer.close()
