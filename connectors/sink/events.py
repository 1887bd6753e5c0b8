"""The `events` topic into the `events` table: one row per id, the first record of an id wins.

Nostr allows U+0000 in content and tags; PostgreSQL `text` and `jsonb` cannot hold it. Such an
event is refused here as `unwritable` and goes to `rejects` with its original bytes, so it is not
lost and never blocks its partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from bigbrotr.codec import Codec
from connectors.sink.writer import Staging, Unwritable

NUL = "\x00"

STAGING = Staging(
    name="sink_events",
    columns=(
        ("id", "bytea"),
        ("pubkey", "bytea"),
        ("created_at", "bigint"),
        ("kind", "integer"),
        ("tags", "jsonb"),
        ("content", "text"),
        ("sig", "bytea"),
        ("first_seen_at", "timestamptz"),
        ("first_seen_relay", "text"),
    ),
    merge="""
        INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, first_seen_at,
                            first_seen_relay)
        SELECT id, pubkey, created_at, kind, tags, content, sig, first_seen_at, first_seen_relay
        FROM sink_events
        ON CONFLICT (id) DO NOTHING
    """,
)


@dataclass(frozen=True, slots=True)
class EventRow:
    row: tuple[Any, ...]
    relay_url: str | None
    seen_at: datetime

    @property
    def id(self) -> bytes:
        first: bytes = self.row[0]
        return first


def event_row(record: dict[str, Any]) -> EventRow:
    """The table row of a decoded `Event`; `Unwritable` when PostgreSQL could not hold it."""
    relay = record["first_seen_relay"]
    tags = record["tags"]
    if NUL in record["content"] or any(NUL in value for tag in tags for value in tag):
        raise Unwritable(
            "unwritable",
            f"event {record['id']}: content or a tag contains U+0000, which PostgreSQL text "
            "and jsonb cannot store",
            relay,
        )
    try:
        row = (
            bytes.fromhex(record["id"]),
            bytes.fromhex(record["pubkey"]),
            record["created_at"],
            record["kind"],
            orjson.dumps(tags).decode(),
            record["content"],
            bytes.fromhex(record["sig"]),
            record["first_seen_at"],
            relay,
        )
    except ValueError as exc:
        raise Unwritable("bad_shape", f"event {record['id']!r}: {exc}", relay) from exc
    return EventRow(row, relay, record["first_seen_at"])


class EventsWriter:
    topic = "events"

    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def prepare(self, key: bytes | None, value: bytes | None) -> EventRow:
        if value is None:
            raise Unwritable("bad_record", "a tombstone on events, which has no deletes")
        return event_row(self._codec.decode("Event", value))

    async def setup(self, conn: Any) -> None:
        await conn.execute(STAGING.create)

    async def write(self, conn: Any, items: Sequence[EventRow]) -> None:
        first: dict[bytes, tuple[Any, ...]] = {}
        for item in items:
            first.setdefault(item.id, item.row)
        await STAGING.load(conn, list(first.values()))
