"""The `sightings` topic into the `sightings` table: first and last sighting per (event, relay).

The merge keeps LEAST / GREATEST, so the table does not depend on the order records arrive in. A
sighting from an external topic has no relay; its row keeps the source (`external:<topic>`) in
`relay_url`, which is part of the key and so cannot be NULL, and never looks like a ws URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bigbrotr.codec import Codec
from connectors.sink.writer import Staging, Unwritable

STAGING = Staging(
    name="sink_sightings",
    columns=(
        ("event_id", "bytea"),
        ("relay_url", "text"),
        ("first_seen_at", "timestamptz"),
        ("last_seen_at", "timestamptz"),
    ),
    merge="""
        INSERT INTO sightings AS s (event_id, relay_url, first_seen_at, last_seen_at)
        SELECT event_id, relay_url, first_seen_at, last_seen_at FROM sink_sightings
        ON CONFLICT (event_id, relay_url) DO UPDATE
        SET first_seen_at = LEAST(s.first_seen_at, excluded.first_seen_at),
            last_seen_at = GREATEST(s.last_seen_at, excluded.last_seen_at)
        WHERE excluded.first_seen_at < s.first_seen_at OR excluded.last_seen_at > s.last_seen_at
    """,
)


@dataclass(frozen=True, slots=True)
class SightingRow:
    event_id: bytes
    where: str
    relay_url: str | None
    seen_at: datetime


def sighting_row(record: dict[str, Any]) -> SightingRow:
    relay = record["relay_url"]
    try:
        event_id = bytes.fromhex(record["event_id"])
    except ValueError as exc:
        raise Unwritable("bad_shape", f"event_id {record['event_id']!r}: {exc}", relay) from exc
    return SightingRow(event_id, relay or record["source"], relay, record["seen_at"])


def merged(items: Sequence[SightingRow]) -> list[tuple[bytes, str, datetime, datetime]]:
    """One row per (event, relay) with the earliest and latest sighting of the batch."""
    spans: dict[tuple[bytes, str], tuple[datetime, datetime]] = {}
    for item in items:
        key = (item.event_id, item.where)
        span = spans.get(key)
        if span is None:
            spans[key] = (item.seen_at, item.seen_at)
        else:
            spans[key] = (min(span[0], item.seen_at), max(span[1], item.seen_at))
    return [(event_id, where, *span) for (event_id, where), span in spans.items()]


class SightingsWriter:
    topic = "sightings"

    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def prepare(self, key: bytes | None, value: bytes | None) -> SightingRow:
        if value is None:
            raise Unwritable("bad_record", "a tombstone on sightings, which has no deletes")
        return sighting_row(self._codec.decode("Sighting", value))

    async def setup(self, conn: Any) -> None:
        await conn.execute(STAGING.create)

    async def write(self, conn: Any, items: Sequence[SightingRow]) -> None:
        await STAGING.load(conn, merged(items))
