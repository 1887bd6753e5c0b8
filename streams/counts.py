"""What one event or sighting adds to the count tables, as messages between the two count steps.

A count's key (a kind, a pubkey, a day, a relay) is not the key its source topic is partitioned
by (the event id), so each count is sent as an `Increment` keyed by the count's key to an internal
topic, where one partition owns each key and so each key's count lives in one table partition.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache

from bigbrotr.nostr import Event

SECONDS_PER_DAY = 86_400
PER_KIND = "events-per-kind"
PER_PUBKEY = "events-per-pubkey"
PER_DAY = "events-per-day"
PER_RELAY = "events-per-relay"
COUNT_TABLES = (PER_KIND, PER_PUBKEY, PER_DAY, PER_RELAY)


@dataclass(frozen=True)
class Increment:
    """`by` distinct events add `by` to `table[key]` (a batch's events sum up in one)."""

    table: str
    key: str
    by: int = 1

    def message_key(self) -> bytes:
        return f"{self.table}:{self.key}".encode()

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> Increment | None:
        """None for anything that is not an increment this module wrote."""
        try:
            fields = json.loads(value)
            increment = cls(**fields)
        except (ValueError, TypeError, RecursionError):
            return None
        if type(increment.table) is not str or type(increment.key) is not str:
            return None
        if type(increment.by) is not int or increment.by < 1:
            return None
        return increment if increment.table in COUNT_TABLES else None


class IncrementTally:
    """A batch's increments summed per source partition, table and key: one message each."""

    def __init__(self) -> None:
        self._sums: Counter[tuple[int, str, str]] = Counter()

    def add(self, partition: int, increments: list[Increment]) -> None:
        for increment in increments:
            self._sums[(partition, increment.table, increment.key)] += increment.by

    def drain(self) -> list[tuple[int, Increment]]:
        sums, self._sums = self._sums, Counter()
        return [
            (partition, Increment(table, key, by)) for (partition, table, key), by in sums.items()
        ]


def event_counts(event: Event) -> list[Increment]:
    """An event counts once per kind, per author and per UTC day of `created_at`."""
    increments = [Increment(PER_KIND, str(event.kind)), Increment(PER_PUBKEY, event.pubkey)]
    day = utc_day(event.created_at)
    if day is not None:
        increments.append(Increment(PER_DAY, day))
    return increments


def utc_day(created_at: int) -> str | None:
    """`YYYY-MM-DD`; None for a time no calendar date holds (the validator refuses those)."""
    return _day(created_at // SECONDS_PER_DAY)


@lru_cache(maxsize=4096)
def _day(days: int) -> str | None:
    """Cached per day: a datetime per counted event was a measurable share of the worker."""
    try:
        return datetime.fromtimestamp(days * SECONDS_PER_DAY, UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def relay_key(event_id: str, relay_url: str) -> str:
    """An event counts once per relay however many times the relay served it."""
    return f"{event_id}|{relay_url}"
