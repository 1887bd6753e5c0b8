"""NIP-66 events from probe records, as pure functions: kind 30166 per relay, 10166 per monitor.

Tag names follow NIP-66: `d` (relay URL), `n` (network), `rtt-open` / `rtt-read` / `rtt-write`
(ms), `N` (supported NIPs), `R` (NIP-11 requirements, `!` for false), `t` (topics), `g` (geohash);
the announcement carries `frequency`, `timeout` (ms, then the check it applies to) and `c` (checks).
`T` (relay type) and `k` (accepted kinds) are left out: no probe step measures them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bigbrotr.nostr import Event, sign_event

DISCOVERY_KIND = 30166
ANNOUNCEMENT_KIND = 10166
WRITE_CHECK_KIND = 20166  # ephemeral: relays acknowledge it and keep nothing
# NIP-11 `limitation` flags and the NIP-66 requirement each one states.
_REQUIREMENTS = (
    ("auth_required", "auth"),
    ("payment_required", "payment"),
    ("restricted_writes", "writes"),
)


def discovery_tags(probe: Mapping[str, Any]) -> list[list[str]]:
    """The tags of a kind 30166 event for one RelayProbe record."""
    tags = [["d", probe["relay_url"]], ["n", str(probe["network"])]]
    for check in ("open", "read", "write"):
        result = probe["checks"].get(check)
        if result and result["ok"] and result["rtt_ms"] is not None:
            tags.append([f"rtt-{check}", str(result["rtt_ms"])])
    document = _document(probe.get("nip11"))
    tags += [["N", str(nip)] for nip in _supported_nips(document)]
    tags += [["R", requirement] for requirement in _requirements(document)]
    tags += [["t", topic] for topic in _topics(document)]
    geohash = (probe.get("geo") or {}).get("geohash")
    if geohash:
        tags.append(["g", geohash])
    return tags


def discovery_event(secret_key: str, probe: Mapping[str, Any], created_at: int) -> Event:
    """A signed kind 30166 whose content is the NIP-11 document, when there is one."""
    return sign_event(
        secret_key, created_at, DISCOVERY_KIND, discovery_tags(probe), probe.get("nip11") or ""
    )


def announcement_tags(
    frequency_s: float, timeouts_s: Mapping[str, float], checks: Iterable[str]
) -> list[list[str]]:
    """The tags of a kind 10166 monitor announcement."""
    tags = [["frequency", str(round(frequency_s))]]
    tags += [
        ["timeout", str(round(seconds * 1000)), check] for check, seconds in timeouts_s.items()
    ]
    tags += [["c", check] for check in checks]
    return tags


def announcement_event(
    secret_key: str,
    created_at: int,
    *,
    frequency_s: float,
    timeouts_s: Mapping[str, float],
    checks: Sequence[str],
) -> Event:
    tags = announcement_tags(frequency_s, timeouts_s, checks)
    return sign_event(secret_key, created_at, ANNOUNCEMENT_KIND, tags, "")


def write_check_event(secret_key: str, created_at: int) -> Event:
    """The event the write check publishes."""
    return sign_event(secret_key, created_at, WRITE_CHECK_KIND, [], "bigbrotr write check")


def _document(text: str | None) -> Mapping[str, Any]:
    if not text:
        return {}
    document = json.loads(text)
    return document if isinstance(document, dict) else {}


def _supported_nips(document: Mapping[str, Any]) -> list[int]:
    nips = document.get("supported_nips")
    if not isinstance(nips, list):
        return []
    return sorted({nip for nip in nips if type(nip) is int and nip >= 0})


def _requirements(document: Mapping[str, Any]) -> list[str]:
    limitation = document.get("limitation")
    if not isinstance(limitation, dict):
        return []
    found = []
    for field, requirement in _REQUIREMENTS:
        value = limitation.get(field)
        if type(value) is bool:
            found.append(requirement if value else f"!{requirement}")
    difficulty = limitation.get("min_pow_difficulty")
    if type(difficulty) is int:
        found.append("pow" if difficulty > 0 else "!pow")
    return found


def _topics(document: Mapping[str, Any]) -> list[str]:
    topics = document.get("tags")
    if not isinstance(topics, list):
        return []
    return list(dict.fromkeys(topic for topic in topics if isinstance(topic, str) and topic))
