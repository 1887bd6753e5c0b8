"""`bigbrotr verify`: row counts and content checksums (see `checksum`) per table, compared
between two databases, or between a database and the topics it came from.

A database is read in one REPEATABLE READ snapshot, its stored sink offsets included, so a sink
writing meanwhile cannot skew the figures. "The topics" are materialised by replaying them into a
scratch database (created, then dropped) up to exactly those stored offsets, so a sink that is
behind is compared with what it has read; a database with no stored offsets is compared with the
topics' current end. Bookkeeping columns that are not facts from the log (`relays.status`,
`relays.updated_at`, `sink_offsets`, the generated `events.tagvalues`) are left out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from bigbrotr.config import Settings
from bigbrotr.errors import SinkError
from connectors.sink.checksum import TableChecksum, canonical_row
from connectors.sink.database import CONNECT_TIMEOUT_S, where
from connectors.sink.databases import create_database, database_name, drop_database
from connectors.sink.offsets import Partition, load_offsets
from connectors.sink.replay import plan, replay
from connectors.sink.service import sink_group, sink_topics

TABLES: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "events": (
        (
            "id",
            "pubkey",
            "created_at",
            "kind",
            "tags",
            "content",
            "sig",
            "first_seen_at",
            "first_seen_relay",
        ),
        frozenset({"tags"}),
    ),
    "sightings": (("event_id", "relay_url", "first_seen_at", "last_seen_at"), frozenset()),
    "relays": (("url", "network", "source", "discovered_at"), frozenset()),
    "relay_probes": (
        (
            "relay_url",
            "probed_at",
            "open_ok",
            "open_rtt_ms",
            "read_ok",
            "read_rtt_ms",
            "write_ok",
            "write_rtt_ms",
            "error",
        ),
        frozenset({"error"}),
    ),
    "metadata_documents": (
        ("sha256", "kind", "document", "first_seen_at"),
        frozenset({"document"}),
    ),
    "relay_metadata": (("relay_url", "kind", "observed_at", "document_sha256"), frozenset()),
    "aggregate_counts": (("dimension", "key", "count"), frozenset()),
    "relay_health": (
        ("relay_url", "last_probe_at", "up", "availability_24h", "availability_7d", "document"),
        frozenset({"document"}),
    ),
}
FETCH_ROWS = 5000


@dataclass
class Content:
    """What `verify` compares: per table row count and checksum, and the stored offsets."""

    tables: dict[str, TableChecksum] = field(default_factory=dict)
    offsets: dict[Partition, int] = field(default_factory=dict)


def _select(table: str) -> tuple[str, frozenset[int]]:
    columns, json_columns = TABLES[table]
    shown = ", ".join(f"{c}::text" if c in json_columns else c for c in columns)
    return f"SELECT {shown} FROM {table}", frozenset(columns.index(c) for c in json_columns)


async def database_content(dsn: str, group: str, topics: list[str]) -> Content:
    """Every table's checksum and the group's offsets, from one consistent snapshot."""
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise SinkError(f"cannot read the database at {where(dsn)}: {exc}") from exc
    content = Content()
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            content.offsets = await load_offsets(conn, group, topics)
            for table in TABLES:
                query, json_columns = _select(table)
                total = TableChecksum()
                async for row in conn.cursor(query, prefetch=FETCH_ROWS):
                    total.add(canonical_row(tuple(row), json_columns))
                content.tables[table] = total
    except asyncpg.UndefinedTableError as exc:
        raise SinkError(
            f"the database at {where(dsn)} lacks a table ({exc}); run `bigbrotr migrate` on it"
        ) from exc
    finally:
        await conn.close()
    return content


async def topics_content(
    settings: Settings,
    against: Content,
    progress: Callable[[int, int], None] | None = None,
) -> Content:
    """The content the topics give, replayed into a scratch database up to `against.offsets`
    (or to the topics' end when it has none)."""
    dsn = settings.database.dsn()
    scratch = await create_database(dsn, f"{database_name(dsn)[:40]}_verify_{uuid.uuid4().hex[:8]}")
    try:
        replay_plan = plan(settings, ends=against.offsets or None)
        await replay(settings, scratch, replay_plan, progress=progress, publish_rejects=False)
        return await database_content(scratch, sink_group(settings), sink_topics(settings))
    finally:
        await drop_database(scratch)


def differences(left: Content, right: Content) -> list[str]:
    """Names of the tables whose count or checksum differ."""
    return [
        table
        for table in TABLES
        if (left.tables[table].rows, left.tables[table].total)
        != (right.tables[table].rows, right.tables[table].total)
    ]
