"""Relay URLs that archived events mention: where other clients say relays are.

Pure logic over `Event` records (as decoded from the `events` topic), so it is tested alone. It
only picks the strings out; whether they are usable relay URLs is `screen`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RELAY_LIST_KIND = 10002  # NIP-65: a user's read/write relays, as `r` tags
RELAY_DISCOVERY_KIND = 30166  # NIP-66: a monitor's report on one relay, named by its `d` tag
_HINTED_TAGS = frozenset({"e", "p"})  # NIP-01: a relay where the referenced event or key is found


def relay_urls_in_event(event: Mapping[str, Any]) -> list[str]:
    """The relay URLs `event` names, each once, in tag order; empty strings are not mentions."""
    kind = event.get("kind")
    found: dict[str, None] = {}
    for tag in event.get("tags") or ():
        if not isinstance(tag, Sequence) or isinstance(tag, str) or not tag:
            continue
        for value in _mentions(kind, tag):
            if isinstance(value, str) and value.strip():
                found.setdefault(value.strip(), None)
    return list(found)


def _mentions(kind: object, tag: Sequence[Any]) -> list[Any]:
    name = tag[0]
    if name in _HINTED_TAGS and len(tag) >= 3:
        return [tag[2]]
    if len(tag) < 2:
        return []
    if (name == "r" and kind == RELAY_LIST_KIND) or (name == "d" and kind == RELAY_DISCOVERY_KIND):
        return [tag[1]]
    return []
