"""Signed test events from a few fixed keys, so every run loads the same ids."""

from __future__ import annotations

import hashlib
from functools import cache

from bigbrotr.nostr import Event, sign_event

TEST_KEYS = tuple(hashlib.sha256(f"bigbrotr test key {n}".encode()).hexdigest() for n in range(4))
BASE_TIME = 1_700_000_000


def make_events(
    count: int,
    *,
    since: int = BASE_TIME,
    until: int = BASE_TIME + 86_400,
    same_second: bool = False,
    kind: int = 1,
    label: str = "event",
    author: int | None = None,
) -> list[Event]:
    """`count` distinct events from the test keys (only `TEST_KEYS[author]` when given),
    `created_at` spread evenly over [since, until], or all at `since` when `same_second` (the
    case relay caps get wrong). `label` goes into the content so batches never share an id.
    """
    span = max(until - since, 0)
    events = []
    for index in range(count):
        created_at = since if same_second or count == 1 else since + span * index // (count - 1)
        key = TEST_KEYS[index % len(TEST_KEYS) if author is None else author]
        events.append(sign_event(key, created_at, kind, [["t", "bigbrotr"]], f"{label} {index}"))
    return events


@cache
def history() -> tuple[Event, ...]:
    """The archive the real relays are loaded with: 1600 events over one day, and 400 more that
    share a single second (more than a relay's page, fewer than LocalRelay's 500 cap).
    """
    spread = make_events(1600, label="spread")
    crowded = make_events(400, since=BASE_TIME + 50_000, same_second=True, label="same second")
    return tuple(spread + crowded)
