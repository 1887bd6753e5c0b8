"""Fetches a relay's NIP-11 information document; the monitor and the synchronizer both use it.

The document is served over HTTP(S) at the relay's own URL when asked with
`Accept: application/nostr+json`. Relay URLs come from strangers, so the fetch obeys the same SSRF
guard as the websocket client: the host is resolved once, checked, and the request goes to that
checked address (the name still drives the Host header, SNI and certificate check). Overlay relays
go through the SOCKS5 proxy, which resolves their names. Size and time are capped: a relay that
sends an endless or slow body costs at most `max_bytes` and `time_limit`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from bigbrotr.errors import RelayInfoError
from bigbrotr.nostr import (
    InvalidRelayUrl,
    Network,
    classify_network,
    normalize_relay_url,
    relay_host,
    resolve_and_check,
)

ACCEPT = "application/nostr+json"
DEFAULT_MAX_BYTES = 64 * 1024
DEFAULT_TIME_LIMIT = 10.0
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}
_SAMPLE_BYTES = 80


@dataclass(frozen=True, slots=True)
class Nip11Document:
    """A relay's information document as a JSON object, and its canonical text.

    `canonical` (sorted keys, no spaces, non-ASCII literal) is what the `probes` topic carries, so
    equal documents always have equal text and hash.
    """

    relay_url: str
    document: Mapping[str, Any]
    canonical: str

    @property
    def max_limit(self) -> int | None:
        """`limitation.max_limit`: the most events the relay returns per REQ, when it says."""
        value = self.limitation.get("max_limit")
        return value if type(value) is int and value > 0 else None

    @property
    def limitation(self) -> Mapping[str, Any]:
        value = self.document.get("limitation")
        return value if isinstance(value, dict) else {}

    @property
    def supported_nips(self) -> tuple[int, ...]:
        """The NIP numbers the relay claims, in order, ignoring anything that is not a number."""
        value = self.document.get("supported_nips")
        if not isinstance(value, list):
            return ()
        return tuple(sorted({item for item in value if type(item) is int and item >= 0}))


def info_url(relay_url: str) -> str:
    """The http(s) URL a relay serves its NIP-11 document on."""
    parts = urlsplit(normalize_relay_url(relay_url))
    return urlunsplit(parts._replace(scheme=_HTTP_SCHEMES[parts.scheme], path=parts.path or "/"))


async def fetch_nip11(
    relay_url: str,
    *,
    allow: Collection[str] = (),
    proxy: str | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    ssl_context: ssl.SSLContext | None = None,
) -> Nip11Document:
    """Fetch and parse the document; raise `RelayInfoError` saying why when there is none.

    `allow` and `proxy` mean what they mean for `RelayClient`; `time_limit` (seconds) bounds
    everything (DNS, connect, TLS, body). `ssl_context` defaults to the system's trust store.
    """
    try:
        url = normalize_relay_url(relay_url)
    except InvalidRelayUrl as exc:
        raise RelayInfoError(f"no NIP-11 document: {exc}") from exc
    http_url = info_url(url)
    try:
        async with asyncio.timeout(time_limit):
            body = await _get(url, http_url, allow, proxy, time_limit, max_bytes, ssl_context)
    except TimeoutError as exc:
        raise RelayInfoError(
            f"NIP-11 from {http_url}: no complete answer in {time_limit:g}s"
        ) from exc
    except InvalidRelayUrl as exc:
        raise RelayInfoError(f"NIP-11 from {http_url}: {exc}") from exc
    except (httpx.HTTPError, OSError) as exc:
        raise RelayInfoError(f"NIP-11 from {http_url}: {_describe(exc)}") from exc
    document = _parse(body, http_url)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Nip11Document(url, document, canonical)


async def _get(
    url: str,
    http_url: str,
    allow: Collection[str],
    proxy: str | None,
    time_limit: float,
    max_bytes: int,
    ssl_context: ssl.SSLContext | None,
) -> bytes:
    host = relay_host(url)
    network = classify_network(host)
    client = httpx.AsyncClient(
        proxy=None if network is Network.CLEARNET else proxy,
        verify=ssl_context or ssl.create_default_context(),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(time_limit),
        headers={"Accept": ACCEPT, "User-Agent": "bigbrotr"},
    )
    async with client:
        if network is not Network.CLEARNET:
            if proxy is None:
                raise RelayInfoError(
                    f"NIP-11 from {http_url}: {network} relays are reached through a SOCKS5 "
                    "proxy; set connectors.socks5_proxy"
                )
            return await _read(client, http_url, {}, {}, max_bytes)
        addresses = await resolve_and_check(url, allow)
        failures: list[str] = []
        for address in addresses:
            try:
                return await _read(client, *_pinned(http_url, host, address), max_bytes)
            except httpx.ConnectError as exc:
                failures.append(f"{address}: {_describe(exc)}")
        raise RelayInfoError(f"NIP-11 from {http_url}: no address answered ({'; '.join(failures)})")


def _pinned(http_url: str, host: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The request aimed at one checked address while speaking to `host` (Host header, SNI)."""
    parts = urlsplit(http_url)
    literal = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    extensions = {} if host == address else {"sni_hostname": host}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc}, extensions


async def _read(
    client: httpx.AsyncClient,
    target: str,
    headers: dict[str, str],
    extensions: dict[str, Any],
    max_bytes: int,
) -> bytes:
    async with client.stream("GET", target, headers=headers, extensions=extensions) as response:
        if response.status_code != httpx.codes.OK:
            where = response.headers.get("location")
            moved = f" to {where}" if where and response.is_redirect else ""
            raise RelayInfoError(
                f"NIP-11 from {response.request.url}: HTTP {response.status_code}{moved}"
            )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise RelayInfoError(
                f"NIP-11 document of {declared} bytes is over the {max_bytes}-byte limit"
            )
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise RelayInfoError(f"NIP-11 document is over the {max_bytes}-byte limit")
    return bytes(body)


def _parse(body: bytes, http_url: str) -> dict[str, Any]:
    try:
        document = json.loads(
            body.decode("utf-8-sig"), object_pairs_hook=_unique_keys, parse_constant=_no_constant
        )
    except UnicodeDecodeError as exc:
        raise RelayInfoError(f"NIP-11 from {http_url} is not UTF-8 text: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        sample = body[:_SAMPLE_BYTES].decode("utf-8", "replace")
        raise RelayInfoError(f"NIP-11 from {http_url} is not JSON ({exc}): {sample!r}") from exc
    if not isinstance(document, dict):
        raise RelayInfoError(
            f"NIP-11 from {http_url} is JSON but not an object ({type(document).__name__})"
        )
    return document


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate keys in one object")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
