"""A SOCKS5 proxy (pproxy, in-process) that tunnels every connection to one loopback relay.

It stands in for Tor: a client can only reach a `.onion` URL through it, and its log shows which
host the client asked for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pproxy  # type: ignore[import-untyped]


@dataclass
class SocksProxy:
    url: str
    requests: list[str] = field(default_factory=list)


@asynccontextmanager
async def socks_proxy(target_host_port: str) -> AsyncIterator[SocksProxy]:
    """`socks5://127.0.0.1:PORT`; whatever host a client asks for, it reaches the target."""
    proxy = SocksProxy(url="")
    server = await pproxy.Server("socks5://127.0.0.1:0").start_server(
        {
            "rserver": [pproxy.Connection(f"tunnel://{target_host_port}")],
            "verbose": proxy.requests.append,
        }
    )
    try:
        proxy.url = f"socks5://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield proxy
    finally:
        server.close()
        await server.wait_closed()
