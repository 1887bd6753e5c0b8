"""The compacted `relays` topic into the `relays` table: the latest record of a URL wins.

That is what compaction keeps, so the table is the same whether it was filled live or replayed
after compaction. A tombstone (null value) deletes the relay. `status` and `updated_at` are this
database's own bookkeeping and are left to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bigbrotr.codec import Codec
from connectors.sink.writer import Staging, Unwritable

STAGING = Staging(
    name="sink_relays",
    columns=(
        ("url", "text"),
        ("network", "text"),
        ("source", "text"),
        ("discovered_at", "timestamptz"),
    ),
    merge="""
        INSERT INTO relays AS r (url, network, source, discovered_at)
        SELECT url, network, source, discovered_at FROM sink_relays
        ON CONFLICT (url) DO UPDATE
        SET network = excluded.network, source = excluded.source,
            discovered_at = excluded.discovered_at, updated_at = now()
        WHERE (r.network, r.source, r.discovered_at)
              IS DISTINCT FROM (excluded.network, excluded.source, excluded.discovered_at)
    """,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RelayRow:
    """A relay's new row, or `row=None` for a tombstone that deletes it."""

    url: str
    row: tuple[str, str, str, datetime] | None

    @property
    def relay_url(self) -> str:
        return self.url

    @property
    def seen_at(self) -> datetime:
        return self.row[3] if self.row is not None else _EPOCH


def latest(items: Sequence[RelayRow]) -> tuple[list[str], list[tuple[str, str, str, datetime]]]:
    """The batch's last word per URL: URLs to delete, and rows to upsert."""
    last: dict[str, RelayRow] = {}
    for item in items:
        last.pop(item.url, None)
        last[item.url] = item
    deleted = [url for url, item in last.items() if item.row is None]
    rows = [item.row for item in last.values() if item.row is not None]
    return deleted, rows


class RelaysWriter:
    topic = "relays"

    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def prepare(self, key: bytes | None, value: bytes | None) -> RelayRow:
        if value is None:
            try:
                url = (key or b"").decode()
            except UnicodeDecodeError as exc:
                raise Unwritable("bad_record", f"a tombstone with the bad key {key!r}") from exc
            if not url:
                raise Unwritable("bad_record", "a tombstone without a key")
            return RelayRow(url, None)
        record = self._codec.decode("RelayDiscovered", value)
        url = record["url"]
        return RelayRow(url, (url, record["network"], record["source"], record["discovered_at"]))

    async def setup(self, conn: Any) -> None:
        await conn.execute(STAGING.create)

    async def write(self, conn: Any, items: Sequence[RelayRow]) -> None:
        deleted, rows = latest(items)
        if deleted:
            await conn.execute("DELETE FROM relays WHERE url = ANY($1::text[])", deleted)
        await STAGING.load(conn, rows)
