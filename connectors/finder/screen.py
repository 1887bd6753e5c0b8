"""Screening found text into relay candidates: one normal form, its network, and the SSRF guard.

Found URLs come from strangers (events, lists on the web), so anything unusable is skipped with a
reason the finder counts; nothing here raises on bad input.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from bigbrotr.nostr import (
    InvalidRelayUrl,
    Network,
    NonPublicRelayUrl,
    check_public,
    classify_network,
    normalize_relay_url,
    relay_host,
)

MAX_URL_CHARS = 512  # longer "URLs" in tags are payloads, not relays


class SkipReason(StrEnum):
    """Why found text did not become a candidate; stable, the finder's counts file under it."""

    TOO_LONG = "too_long"
    INVALID_URL = "invalid_url"
    NON_PUBLIC = "non_public"


@dataclass(frozen=True, slots=True)
class Screened:
    """A usable relay URL in its normal form."""

    url: str
    network: Network


@dataclass(frozen=True, slots=True)
class Skipped:
    """Found text that is not a relay the finder may probe, and why."""

    reason: SkipReason
    detail: str


def screen_url(text: str, allow: Collection[str] = ()) -> Screened | Skipped:
    """Normalise `text` and judge it by name: private and local hosts need the allow-list.

    Names that resolve to private addresses are caught later, when the probe dials them.
    """
    if len(text) > MAX_URL_CHARS:
        return Skipped(SkipReason.TOO_LONG, f"{len(text)} characters, more than {MAX_URL_CHARS}")
    try:
        url = normalize_relay_url(text)
        check_public(url, allow)
    except NonPublicRelayUrl as exc:
        return Skipped(SkipReason.NON_PUBLIC, str(exc))
    except InvalidRelayUrl as exc:
        return Skipped(SkipReason.INVALID_URL, str(exc))
    return Screened(url, classify_network(relay_host(url)))
