"""Relay URLs: one normal form per relay (it keys the `relays` topic), its network, an SSRF guard.

The guard matters because relay URLs come from strangers (events, seed lists): without it a fetcher
would open connections to whatever private or loopback address an event names.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Collection, Sequence
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import idna

_DEFAULT_PORTS = {"ws": 80, "wss": 443}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# WHATWG URL parsers read a host whose last label is a number as an IPv4 address in a shorthand
# form ("127.1", "0x7f.1", "2130706433"); refuse those rather than guess what a client connects to.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_DUPLICATE_SLASHES = re.compile(r"/{2,}")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")
_MAX_HOST_LENGTH = 253
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class InvalidRelayUrl(ValueError):  # noqa: N818  (the name reads as a verdict on the URL)
    """The text is not a usable ws:// or wss:// relay URL."""


class NonPublicRelayUrl(InvalidRelayUrl):
    """The relay is on a loopback, private or otherwise non-public address and not allow-listed."""


class Network(StrEnum):
    """Where a relay lives; overlay relays need a proxy and are never resolved by DNS."""

    CLEARNET = "clearnet"
    TOR = "tor"
    I2P = "i2p"
    LOKI = "loki"


_OVERLAYS = {".onion": Network.TOR, ".i2p": Network.I2P, ".loki": Network.LOKI}


def normalize_relay_url(url: str) -> str:
    """The one spelling of a relay URL: lowercase scheme and host, punycode, no default port,
    no userinfo, query, fragment, duplicate or trailing slashes. Idempotent.
    """
    parts = _split(url)
    host = _normalize_host(parts.hostname or "", url)
    port = _port(parts, url)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        netloc = f"{netloc}:{port}"
    path = _DUPLICATE_SLASHES.sub("/", parts.path).rstrip("/")
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _split(url: str) -> SplitResult:
    text = url.strip()
    if _FORBIDDEN.search(text):
        raise InvalidRelayUrl(f"relay URL {url!r} contains whitespace, control or '\\' characters")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise InvalidRelayUrl(f"relay URL {url!r} cannot be parsed: {exc}") from exc
    if parts.scheme not in _DEFAULT_PORTS:
        raise InvalidRelayUrl(f"relay URL {url!r} must start with ws:// or wss://")
    return parts


def _port(parts: SplitResult, url: str) -> int | None:
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidRelayUrl(f"relay URL {url!r} has an invalid port") from exc
    if port == 0:
        raise InvalidRelayUrl(f"relay URL {url!r} has port 0")
    return port


def _normalize_host(host: str, url: str) -> str:
    host = host.removesuffix(".")
    if not host:
        raise InvalidRelayUrl(f"relay URL {url!r} has no host")
    if "%" in host:
        raise InvalidRelayUrl(
            f"relay URL {url!r} has '%' in its host (percent-encoding or an IPv6 zone); "
            "write the host plainly"
        )
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidRelayUrl(f"relay URL {url!r} has an invalid host name: {exc}") from exc
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise InvalidRelayUrl(f"relay URL {url!r} has a host that is neither a name nor an IP")
    if len(host) > _MAX_HOST_LENGTH or not all(map(_LABEL.fullmatch, labels)):
        raise InvalidRelayUrl(f"relay URL {url!r} has an invalid host name")
    return host


def relay_host(url: str) -> str:
    """The normalised host of a relay URL (IPv6 without brackets)."""
    return _normalize_host(_split(url).hostname or "", url)


def classify_network(host: str) -> Network:
    """The network a (normalised) host lives on, judged by its top-level domain."""
    for suffix, network in _OVERLAYS.items():
        if host.endswith(suffix):
            return network
    return Network.CLEARNET


def is_public_ip(address: str) -> bool:
    """Whether an IP address is globally routable unicast, looking through v4-in-v6 embeddings."""
    ip = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_ip(str(embedded))
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def check_public(url: str, allow: Collection[str] = ()) -> None:
    """Refuse relays on non-public addresses or local names, unless allow-listed.

    `allow` holds relay URLs, hosts or host:port entries (tests and dev stacks list theirs there).
    DNS names are judged by name only; `resolve_and_check` also judges what they resolve to.
    """
    normalized = normalize_relay_url(url)
    host = relay_host(normalized)
    if _allowed(normalized, host, allow) or classify_network(host) is not Network.CLEARNET:
        return
    if _is_ip(host):
        if not is_public_ip(host):
            raise NonPublicRelayUrl(
                f"relay {normalized} is on the non-public address {host}; "
                "add it to the allow-list if you mean to reach it"
            )
    elif host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        raise NonPublicRelayUrl(
            f"relay {normalized} names a local host; "
            "add it to the allow-list if you mean to reach it"
        )


async def resolve_and_check(
    url: str, allow: Collection[str] = (), resolver: Resolver | None = None
) -> tuple[str, ...]:
    """Resolve a clearnet relay's host and refuse it if ANY address is non-public (SSRF guard).

    Returns the addresses (none for overlay networks, which only their proxy can resolve). DNS
    failures propagate as `OSError` (`socket.gaierror`); wrap the call in a timeout.
    """
    check_public(url, allow)
    normalized = normalize_relay_url(url)
    host = relay_host(normalized)
    if classify_network(host) is not Network.CLEARNET:
        return ()
    if _is_ip(host):
        return (host,)
    parts = urlsplit(normalized)
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    addresses = tuple(await (resolver or _getaddrinfo)(host, port))
    if not _allowed(normalized, host, allow):
        blocked = [address for address in addresses if not is_public_ip(address)]
        if blocked:
            raise NonPublicRelayUrl(
                f"relay {normalized} resolves to the non-public address(es) {', '.join(blocked)}; "
                "add it to the allow-list if you mean to reach it"
            )
    return addresses


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos: list[tuple[Any, ...]] = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _allowed(normalized: str, host: str, allow: Collection[str]) -> bool:
    if not allow:
        return False
    parts = urlsplit(normalized)
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    netloc_host = f"[{host}]" if ":" in host else host
    candidates = {normalized, host, netloc_host, f"{netloc_host}:{port}"}
    return any(_allow_entry(entry) in candidates for entry in allow)


def _allow_entry(entry: str) -> str:
    entry = entry.strip()
    if "://" in entry:
        return normalize_relay_url(entry)
    return entry.lower()
