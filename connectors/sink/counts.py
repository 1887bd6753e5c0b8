"""The count changelogs (`events-per-kind`, `-pubkey`, `-day`, `-relay`) into `aggregate_counts`.

A changelog's latest record of a key is its value. A key lives in one partition and a batch holds
a partition's records in offset order, so the last record of a key in a batch is the newest; it
replaces the stored count, whatever that was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.sink.changelog import changelog_key, changelog_value
from connectors.sink.writer import Staging, Unwritable

STAGING = Staging(
    name="sink_counts",
    columns=(("dimension", "text"), ("key", "text"), ("count", "bigint")),
    merge="""
        INSERT INTO aggregate_counts AS c (dimension, key, count)
        SELECT dimension, key, count FROM sink_counts
        ON CONFLICT (dimension, key) DO UPDATE SET count = excluded.count
        WHERE c.count IS DISTINCT FROM excluded.count
    """,
)
PER_RELAY = "events-per-relay"
BIGINT_MAX = (1 << 63) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CountRow:
    dimension: str
    key: str
    count: int

    @property
    def relay_url(self) -> str | None:
        return self.key if self.dimension == PER_RELAY else None

    @property
    def seen_at(self) -> datetime:
        return _EPOCH


def count_row(dimension: str, key: bytes | None, value: bytes | None) -> CountRow:
    text = changelog_key(dimension, key)
    relay = text if dimension == PER_RELAY else None
    count = changelog_value(dimension, text, value, relay)
    if type(count) is not int or not 0 <= count <= BIGINT_MAX:
        raise Unwritable(
            "bad_shape", f"{dimension}[{text}]: {count!r} is not a count (an integer >= 0)", relay
        )
    return CountRow(dimension, text, count)


def latest(items: Sequence[CountRow]) -> list[tuple[str, str, int]]:
    """One row per (dimension, key): the count of its last record in the batch."""
    last = {(item.dimension, item.key): item.count for item in items}
    return [(dimension, key, count) for (dimension, key), count in last.items()]


class CountsWriter:
    """One per count table; they share the staging table, each merge only its dimension's rows."""

    def __init__(self, dimension: str) -> None:
        self.topic = dimension

    def prepare(self, key: bytes | None, value: bytes | None) -> CountRow:
        return count_row(self.topic, key, value)

    async def setup(self, conn: Any) -> None:
        await conn.execute(STAGING.create)

    async def write(self, conn: Any, items: Sequence[CountRow]) -> None:
        await STAGING.load(conn, latest(items))
