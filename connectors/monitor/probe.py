"""One probe of one relay: DNS, geo, TLS, NIP-11 and the websocket checks, as a RelayProbe record.

Steps run one after the other, each under its own deadline, and the whole probe under
`probe_timeout`: when that cancels it, the steps already done stay in the record and the cut is
named in `errors`. Whatever happens, the caller gets a record to publish: a failed check is a fact.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bigbrotr.errors import RelayInfoError
from bigbrotr.nostr import (
    InvalidRelayUrl,
    Network,
    classify_network,
    is_public_ip,
    relay_host,
    resolve_and_check,
)
from connectors.monitor.checks import CheckTimeouts, describe, run_socket_checks
from connectors.monitor.dns import resolve
from connectors.monitor.geo import GeoDatabases
from connectors.monitor.nip66 import write_check_event
from connectors.monitor.tls import certificate_facts
from connectors.nip11 import fetch_nip11

_DEFAULT_PORTS = {"ws": 80, "wss": 443}


@dataclass(frozen=True)
class ProbeConfig:
    """What every probe needs: limits, how to reach relays, and the optional key and geo files."""

    timeouts: CheckTimeouts = field(default_factory=CheckTimeouts)
    nip11_timeout: float = 10.0
    nip11_max_bytes: int = 64 * 1024
    probe_timeout: float = 60.0
    allow: Collection[str] = ()
    proxy: str | None = None
    secret_key: str | None = None
    geo: GeoDatabases | None = None


def empty_probe(url: str, probed_at_ms: int) -> dict[str, Any]:
    """A RelayProbe record with nothing measured yet."""
    return {
        "relay_url": url,
        "network": str(classify_network(relay_host(url))),
        "probed_at": probed_at_ms,
        "nip11": None,
        "nip11_error": None,
        "checks": {"open": None, "read": None, "write": None},
        "dns": None,
        "tls": None,
        "geo": None,
        "errors": {},
    }


async def probe_relay(url: str, config: ProbeConfig) -> dict[str, Any]:
    """Probe a normalised relay URL; the RelayProbe record, failures included."""
    record = empty_probe(url, int(time.time() * 1000))
    try:
        async with asyncio.timeout(config.probe_timeout):
            await _run_steps(record, url, config)
    except TimeoutError:
        record["errors"]["probe"] = (
            f"cancelled after {config.probe_timeout:g}s; the steps not recorded did not finish"
        )
    return record


async def _run_steps(record: dict[str, Any], url: str, config: ProbeConfig) -> None:
    host = relay_host(url)
    parts = urlsplit(url)
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    clearnet = record["network"] == Network.CLEARNET
    addresses: list[str] = []
    if clearnet and _is_ip(host):
        addresses = [host]
    elif clearnet:
        record["dns"] = await resolve(host, time_limit=config.timeouts.open)
        addresses = record["dns"]["addresses"]
    if config.geo is not None:
        public = [address for address in addresses if is_public_ip(address)] or addresses
        if public:
            record["geo"] = config.geo.lookup(public[0]) or None
    if clearnet and parts.scheme == "wss":
        await _tls_step(record, url, host, port, config)
    try:
        document = await fetch_nip11(
            url,
            allow=config.allow,
            proxy=config.proxy,
            time_limit=config.nip11_timeout,
            max_bytes=config.nip11_max_bytes,
        )
    except RelayInfoError as exc:
        record["nip11_error"] = str(exc)
    else:
        record["nip11"] = document.canonical
    write_event = None
    if config.secret_key is not None:
        write_event = write_check_event(config.secret_key, int(time.time()))
    checks = await run_socket_checks(
        url,
        allow=config.allow,
        proxy=config.proxy,
        timeouts=config.timeouts,
        write_event=write_event,
    )
    record["checks"] = {
        "open": checks.open.to_record(),
        "read": None if checks.read is None else checks.read.to_record(),
        "write": None if checks.write is None else checks.write.to_record(),
    }


async def _tls_step(
    record: dict[str, Any], url: str, host: str, port: int, config: ProbeConfig
) -> None:
    """TLS facts, from an address the SSRF guard approved (the guard's refusal is recorded)."""
    try:
        async with asyncio.timeout(config.timeouts.open):
            checked = await resolve_and_check(url, config.allow)
    except (InvalidRelayUrl, OSError, TimeoutError) as exc:
        record["errors"]["tls"] = f"not attempted: {describe(exc)}"
        return
    record["tls"] = await certificate_facts(host, port, checked, time_limit=config.timeouts.open)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
