"""Opening a websocket to a relay: SSRF guard, then TCP to a checked address or a SOCKS5 proxy.

The socket is connected to an address `resolve_and_check` approved and handed to websockets, so
the relay's name is resolved once: a second lookup by the websocket library could return a
different (private) address. Overlay relays (.onion, .i2p, .loki) go through the proxy, which
resolves their names itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Collection, Sequence
from urllib.parse import urlsplit

from python_socks import ProxyError
from python_socks.async_.asyncio import Proxy
from websockets.asyncio.client import ClientConnection, connect

from bigbrotr.nostr import Network, classify_network, relay_host, resolve_and_check
from bigbrotr.observability.metrics import RELAY_CONNECTS, RELAY_OPEN_CONNECTIONS
from connectors.client.limits import ClientLimits

_DEFAULT_PORTS = {"ws": 80, "wss": 443}


class NoProxyError(ConnectionError):
    """An overlay relay was asked for but no SOCKS5 proxy is configured."""


class _CountedConnection(ClientConnection):
    """Counted in `bigbrotr_relay_open_connections` while its socket is open."""

    counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.counted = True
        RELAY_OPEN_CONNECTIONS.inc()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted:
            self.counted = False
            RELAY_OPEN_CONNECTIONS.dec()
        super().connection_lost(exc)


async def dial(
    url: str, *, allow: Collection[str], proxy: str | None, limits: ClientLimits
) -> ClientConnection:
    """A websocket connection to a normalised relay URL; the caller bounds it with a timeout.

    Raises `InvalidRelayUrl` (refused URL), `OSError` (DNS, TCP, proxy), `TimeoutError`, or a
    websockets error (handshake). Each attempt counts in `bigbrotr_relay_connects`.
    """
    try:
        connection = await _dial(url, allow=allow, proxy=proxy, limits=limits)
    except BaseException:
        RELAY_CONNECTS.labels("failed").inc()
        raise
    RELAY_CONNECTS.labels("ok").inc()
    return connection


async def _dial(
    url: str, *, allow: Collection[str], proxy: str | None, limits: ClientLimits
) -> ClientConnection:
    host = relay_host(url)
    parts = urlsplit(url)
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    addresses = await resolve_and_check(url, allow)
    network = classify_network(host)
    if network is Network.CLEARNET:
        sock = await _connect_tcp(addresses, port)
    elif proxy is None:
        raise NoProxyError(f"{network} relays are reached through a SOCKS5 proxy; none is set")
    else:
        sock = await _connect_proxy(proxy, host, port)
    # Without it a REQ sent right after the previous CLOSE waits for the relay's delayed ACK
    # (Nagle), about 40 ms per request; asyncio only sets it on sockets it creates itself.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return await connect(
            url,
            sock=sock,
            proxy=None,
            open_timeout=None,
            close_timeout=limits.close_timeout,
            max_size=limits.max_frame_bytes,
            user_agent_header="bigbrotr",
            create_connection=_CountedConnection,
        )
    except ValueError as exc:  # a redirect: never followed, the target was not checked
        sock.close()
        raise ConnectionError(f"websocket handshake refused: {exc}") from exc
    except BaseException:
        sock.close()
        raise


async def _connect_proxy(proxy: str, host: str, port: int) -> socket.socket:
    """A socket tunnelled through SOCKS5; the proxy resolves the host (overlay names).

    Its timeout is the caller's; python-socks' own errors for timeouts and refused connections
    are already `OSError`s.
    """
    try:
        return await Proxy.from_url(proxy, rdns=True).connect(host, port)
    except ProxyError as exc:
        raise ConnectionError(f"SOCKS5 proxy {proxy} could not reach {host}:{port}: {exc}") from exc


async def _connect_tcp(addresses: Sequence[str], port: int) -> socket.socket:
    """A connected non-blocking socket to the first address that answers."""
    loop = asyncio.get_running_loop()
    failures: list[str] = []
    for address in addresses:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (address, port))
        except OSError as exc:
            sock.close()
            failures.append(f"{address}: {os.strerror(exc.errno) if exc.errno else exc}")
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise ConnectionError(f"no address answered on port {port} ({'; '.join(failures)})")
