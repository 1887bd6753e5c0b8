"""Does a URL speak NIP-01? One REQ: an EOSE, or a relay asking us to authenticate, says yes.

A relay that wants NIP-42 auth before it answers is still a relay (the monitor and synchronizer
may hold a key for it), so an AUTH challenge or an `auth-required:` CLOSED counts as speaking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

from bigbrotr.nostr import Filter
from connectors.client import ClientLimits, EndReason, RelayClient

_SPEAKS_NIP01 = frozenset(
    {EndReason.EOSE, EndReason.MAX_EVENTS, EndReason.AUTH_REQUIRED, EndReason.AUTH_FAILED}
)
_PROBE_FILTER = Filter(limit=1)
_MAX_EVENTS = 20  # a relay ignoring `limit` still answered; no need to read its whole history


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Whether the relay spoke NIP-01, and in its own words (end reason and detail) how it went."""

    speaks_nip01: bool
    detail: str


async def probe_relay(
    url: str, *, timeout_s: float, allow: Collection[str] = (), proxy: str | None = None
) -> ProbeResult:
    """Send one REQ and judge the answer; every failure is a result, never an exception."""
    limits = ClientLimits(
        connect_timeout=timeout_s,
        idle_timeout=timeout_s,
        total_timeout=timeout_s,
        close_timeout=min(5.0, timeout_s),
        max_events=_MAX_EVENTS,
    )
    client = RelayClient(url, limits=limits, allow=allow, proxy=proxy)
    try:
        # The client bounds every wait itself; this only guards against a bug in those bounds.
        async with asyncio.timeout(timeout_s + limits.close_timeout + 1.0):
            async with client:
                fetched = await client.fetch([_PROBE_FILTER])
    except TimeoutError:
        client.drop()
        return ProbeResult(False, f"no answer within {timeout_s:g}s")
    result = fetched.result
    challenged = client.auth.challenge is not None
    speaks = result.end_reason in _SPEAKS_NIP01 or challenged
    detail = f"{result.end_reason}: {result.detail}"
    if challenged and result.end_reason not in _SPEAKS_NIP01:
        detail += " (after an AUTH challenge)"
    return ProbeResult(speaks, detail)
