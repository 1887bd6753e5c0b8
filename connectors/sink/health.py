"""The `relay-health` changelog into `relay_health`: the document, and the figures queries need.

As with the counts, the last record of a relay in a batch is its newest and replaces the row. The
columns beside the document are read from it, so a document without them (or of the wrong types)
is refused as `bad_shape` rather than stored half understood.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from connectors.sink.changelog import changelog_key, changelog_value
from connectors.sink.writer import Staging, Unwritable

TABLE = "relay-health"
STAGING = Staging(
    name="sink_relay_health",
    columns=(
        ("relay_url", "text"),
        ("last_probe_at", "timestamptz"),
        ("up", "boolean"),
        ("availability_24h", "double precision"),
        ("availability_7d", "double precision"),
        ("document", "jsonb"),
    ),
    merge="""
        INSERT INTO relay_health AS h (relay_url, last_probe_at, up, availability_24h,
                                       availability_7d, document)
        SELECT relay_url, last_probe_at, up, availability_24h, availability_7d, document
        FROM sink_relay_health
        ON CONFLICT (relay_url) DO UPDATE
        SET last_probe_at = excluded.last_probe_at, up = excluded.up,
            availability_24h = excluded.availability_24h,
            availability_7d = excluded.availability_7d, document = excluded.document
        WHERE h.document IS DISTINCT FROM excluded.document
    """,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class HealthRow:
    row: tuple[str, datetime, bool, float | None, float | None, str]

    @property
    def relay_url(self) -> str:
        return self.row[0]

    @property
    def seen_at(self) -> datetime:
        return self.row[1]


def _availability(value: Any) -> bool:
    return value is None or (type(value) in (int, float) and 0 <= value <= 1)


def health_row(key: bytes | None, value: bytes | None) -> HealthRow:
    relay = changelog_key(TABLE, key)
    document = changelog_value(TABLE, relay, value, relay)

    def refuse(why: str) -> Unwritable:
        return Unwritable("bad_shape", f"{TABLE}[{relay}]: {why}", relay)

    if not isinstance(document, dict):
        raise refuse("the value is not a JSON object")
    if document.get("relay_url") != relay:
        raise refuse(f"relay_url {document.get('relay_url')!r} is not the key")
    at, up = document.get("last_probe_at"), document.get("up")
    if type(at) is not int or type(up) is not bool:
        raise refuse("last_probe_at must be an integer (ms) and up a boolean")
    windows = document.get("availability_24h"), document.get("availability_7d")
    if not all(_availability(share) for share in windows):
        raise refuse(f"availabilities {windows} are not shares between 0 and 1 (or null)")
    try:
        probed_at = _EPOCH + timedelta(milliseconds=at)
    except OverflowError as exc:
        raise refuse(f"last_probe_at {at} is not a time") from exc
    day, week = (None if share is None else float(share) for share in windows)
    return HealthRow((relay, probed_at, up, day, week, orjson.dumps(document).decode()))


class HealthWriter:
    topic = TABLE

    def prepare(self, key: bytes | None, value: bytes | None) -> HealthRow:
        return health_row(key, value)

    async def setup(self, conn: Any) -> None:
        await conn.execute(STAGING.create)

    async def write(self, conn: Any, items: Sequence[HealthRow]) -> None:
        last = {item.relay_url: item.row for item in items}
        await STAGING.load(conn, list(last.values()))
