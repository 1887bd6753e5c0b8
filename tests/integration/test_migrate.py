"""The migration runner and the schema it builds, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import bigbrotr.migrate as migrate_module
from bigbrotr.devstack.process import free_port
from bigbrotr.errors import MigrationError
from bigbrotr.migrate import (
    DEFAULT_DIRECTORY,
    MigrationState,
    migrate,
    migration_status,
    read_migration_files,
)

pytestmark = pytest.mark.integration

SHIPPED = read_migration_files(DEFAULT_DIRECTORY)
SHIPPED_VERSIONS = [f.version for f in SHIPPED]
EVENTS_FILE = next(f.filename for f in SHIPPED if f.name == "events")
NEXT_VERSION = SHIPPED_VERSIONS[-1] + 1


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """A copy of the shipped migrations that a test may edit."""
    return Path(shutil.copytree(DEFAULT_DIRECTORY, tmp_path / "migrations"))


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[Any]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def migrated(database_url: str, conn: Any) -> Any:
    """A connection to a database with every shipped migration applied."""
    await migrate(database_url)
    return conn


async def _history(conn: Any) -> list[tuple[int, str, str]]:
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY 1")
    return [(r["version"], r["name"], r["checksum"]) for r in rows]


async def test_applies_all_in_order_and_records_checksums(database_url: str, conn: Any) -> None:
    applied = await migrate(database_url)

    assert [m.version for m in applied] == SHIPPED_VERSIONS
    expected = [
        (
            f.version,
            f.name,
            hashlib.sha256((DEFAULT_DIRECTORY / f.filename).read_bytes()).hexdigest(),
        )
        for f in SHIPPED
    ]
    assert await _history(conn) == expected
    assert [(m.version, m.name, m.checksum) for m in applied] == expected
    times = await conn.fetch("SELECT applied_at FROM schema_migrations ORDER BY version")
    assert [r["applied_at"] for r in times] == sorted(r["applied_at"] for r in times)
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    assert [r["tablename"] for r in tables] == [
        "aggregate_counts",
        "events",
        "metadata_documents",
        "relay_health",
        "relay_metadata",
        "relay_probes",
        "relays",
        "schema_migrations",
        "sightings",
        "sink_offsets",
    ]


async def test_second_run_applies_nothing(database_url: str, conn: Any) -> None:
    await migrate(database_url)
    before = await conn.fetch("SELECT * FROM schema_migrations ORDER BY version")

    assert await migrate(database_url) == []
    assert await conn.fetch("SELECT * FROM schema_migrations ORDER BY version") == before


async def test_new_file_is_applied_on_top(
    database_url: str, conn: Any, migrations_dir: Path
) -> None:
    await migrate(database_url, migrations_dir)
    (migrations_dir / f"{NEXT_VERSION:04d}_extra.sql").write_text("CREATE TABLE extra (x int);\n")

    applied = await migrate(database_url, migrations_dir)

    assert [(m.version, m.name) for m in applied] == [(NEXT_VERSION, "extra")]
    assert await conn.fetchval("SELECT to_regclass('extra') IS NOT NULL")


async def test_edited_applied_file_is_refused(
    database_url: str, conn: Any, migrations_dir: Path
) -> None:
    await migrate(database_url, migrations_dir)
    before = await _history(conn)
    with (migrations_dir / EVENTS_FILE).open("a") as file:
        file.write("-- an innocent looking edit\n")
    (migrations_dir / f"{NEXT_VERSION:04d}_extra.sql").write_text("CREATE TABLE extra (x int);\n")

    with pytest.raises(
        MigrationError, match=f"{re.escape(EVENTS_FILE)} changed after it was applied"
    ):
        await migrate(database_url, migrations_dir)

    assert await _history(conn) == before
    assert not await conn.fetchval("SELECT to_regclass('extra') IS NOT NULL")


async def test_missing_applied_file_is_refused(database_url: str, migrations_dir: Path) -> None:
    await migrate(database_url, migrations_dir)
    (migrations_dir / EVENTS_FILE).unlink()

    with pytest.raises(
        MigrationError, match=f"{re.escape(EVENTS_FILE)} was applied .* file is gone"
    ):
        await migrate(database_url, migrations_dir)


async def test_status_reports_pending_applied_modified_and_missing(
    database_url: str, conn: Any, migrations_dir: Path
) -> None:
    before = await migration_status(database_url, migrations_dir)
    assert [(s.version, s.state, s.applied_at) for s in before] == [
        (v, MigrationState.PENDING, None) for v in SHIPPED_VERSIONS
    ]
    assert not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")

    applied = {m.version: m.applied_at for m in await migrate(database_url, migrations_dir)}
    after = await migration_status(database_url, migrations_dir)
    assert [(s.version, s.state, s.applied_at) for s in after] == [
        (v, MigrationState.APPLIED, applied[v]) for v in SHIPPED_VERSIONS
    ]

    with (migrations_dir / EVENTS_FILE).open("a") as file:
        file.write("\n")
    (migrations_dir / SHIPPED[0].filename).unlink()
    (migrations_dir / f"{NEXT_VERSION:04d}_extra.sql").write_text("SELECT 1;\n")
    states = {s.version: s.state for s in await migration_status(database_url, migrations_dir)}
    events_version = next(f.version for f in SHIPPED if f.filename == EVENTS_FILE)
    assert states[SHIPPED[0].version] is MigrationState.MISSING
    assert states[events_version] is MigrationState.MODIFIED
    assert states[NEXT_VERSION] is MigrationState.PENDING
    untouched = set(SHIPPED_VERSIONS) - {SHIPPED[0].version, events_version}
    assert {states[v] for v in untouched} == {MigrationState.APPLIED}


async def test_failing_migration_rolls_back_only_itself(
    database_url: str, conn: Any, migrations_dir: Path
) -> None:
    broken = migrations_dir / f"{NEXT_VERSION:04d}_broken.sql"
    broken.write_text("CREATE TABLE half_done (x int);\n\nINSERT INTO nosuch VALUES (1);\n")
    (migrations_dir / f"{NEXT_VERSION + 1:04d}_after.sql").write_text("CREATE TABLE after (x int);")

    with pytest.raises(
        MigrationError, match=rf"{re.escape(broken.name)} failed at line 3: .*nosuch"
    ):
        await migrate(database_url, migrations_dir)

    assert [v for v, _, _ in await _history(conn)] == SHIPPED_VERSIONS
    assert await conn.fetchval("SELECT to_regclass('events') IS NOT NULL")
    assert not await conn.fetchval("SELECT to_regclass('half_done') IS NOT NULL")
    assert not await conn.fetchval("SELECT to_regclass('after') IS NOT NULL")

    broken.write_text("CREATE TABLE half_done (x int);\n")
    applied = await migrate(database_url, migrations_dir)
    assert [m.name for m in applied] == ["broken", "after"]


async def test_comment_only_migration_is_applied(database_url: str, migrations_dir: Path) -> None:
    (migrations_dir / f"{NEXT_VERSION:04d}_nothing.sql").write_text("-- reserved\n")

    applied = await migrate(database_url, migrations_dir)

    assert applied[-1].version == NEXT_VERSION


async def test_concurrent_runners_apply_each_file_once(database_url: str, conn: Any) -> None:
    first, second = await asyncio.gather(migrate(database_url), migrate(database_url))

    assert sorted(m.version for m in first + second) == SHIPPED_VERSIONS
    assert [v for v, _, _ in await _history(conn)] == SHIPPED_VERSIONS


async def test_held_lock_times_out_with_a_clear_message(
    database_url: str, conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate_module, "LOCK_TIMEOUT_MS", 300)
    await conn.execute("SELECT pg_advisory_lock($1)", migrate_module.ADVISORY_LOCK_KEY)

    with pytest.raises(MigrationError, match="another migration runner has held the lock"):
        await migrate(database_url)

    assert not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")


async def test_unreachable_server_says_what_to_do() -> None:
    dsn = f"postgresql://someone:secret@127.0.0.1:{free_port()}/bigbrotr"

    with pytest.raises(MigrationError, match="is PostgreSQL running") as info:
        await migrate(dsn)

    assert "bigbrotr dev up" in str(info.value)
    assert "secret" not in str(info.value)


async def test_missing_database_is_reported(database_url: str) -> None:
    dsn = database_url.rsplit("/", 1)[0] + "/no_such_database_here"

    with pytest.raises(MigrationError, match=r"refused the connection .*does not exist"):
        await migration_status(dsn)


# The schema itself.

EVENT_ID = bytes.fromhex("ab" * 32)
PUBKEY = bytes.fromhex("cd" * 32)
SIG = bytes.fromhex("ef" * 64)
OBSERVED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
INSERT_EVENT = """
INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, first_seen_at,
                    first_seen_relay)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, now(), 'wss://relay.example.com')
"""


async def _insert_event(conn: Any, event_id: bytes = EVENT_ID, tags: str = "[]") -> None:
    await conn.execute(INSERT_EVENT, event_id, PUBKEY, 1_700_000_000, 1, tags, "hello", SIG)


async def test_event_is_found_by_tag_through_the_gin_index(migrated: Any) -> None:
    tags = (
        '[["e", "abc", "wss://hint"], ["p", "' + "cd" * 32 + '"], ["t", "nostr"], '
        '["T", "Upper"], ["title", "not single-letter"], ["e"], ["x", "' + "y" * 2000 + '"]]'
    )
    await _insert_event(migrated, tags=tags)
    await _insert_event(migrated, bytes.fromhex("01" * 32), '[["e", "other"]]')

    assert await migrated.fetchval("SELECT tagvalues FROM events WHERE id = $1", EVENT_ID) == [
        "e:abc",
        "p:" + "cd" * 32,
        "t:nostr",
        "T:Upper",
    ]
    query = "SELECT id FROM events WHERE tagvalues @> ARRAY['e:abc']"
    assert [r["id"] for r in await migrated.fetch(query)] == [EVENT_ID]
    assert await migrated.fetch("SELECT id FROM events WHERE tagvalues @> ARRAY['t:NOSTR']") == []
    async with migrated.transaction():
        await migrated.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await migrated.fetch(f"EXPLAIN {query}"))
    assert "events_tagvalues_idx" in plan


async def test_event_id_is_unique_and_sized(migrated: Any) -> None:
    await _insert_event(migrated)
    with pytest.raises(asyncpg.UniqueViolationError):
        await _insert_event(migrated)
    with pytest.raises(asyncpg.CheckViolationError):
        await _insert_event(migrated, bytes(31))
    with pytest.raises(asyncpg.CheckViolationError):
        await _insert_event(migrated, bytes.fromhex("02" * 32), '{"e": "not an array"}')
    assert await migrated.fetchval("SELECT count(*) FROM events") == 1


async def test_event_indexes_cover_the_common_filters(migrated: Any) -> None:
    rows = await migrated.fetch("SELECT indexdef FROM pg_indexes WHERE tablename = 'events'")
    definitions = {r["indexdef"].split(" USING ", 1)[1] for r in rows}
    assert definitions == {
        "btree (id)",
        "btree (pubkey, created_at DESC)",
        "btree (kind, created_at DESC)",
        "btree (created_at DESC)",
        "gin (tagvalues)",
    }


async def test_sighting_is_unique_per_event_and_relay(migrated: Any) -> None:
    insert = "INSERT INTO sightings VALUES ($1, $2, now(), now())"
    await migrated.execute(insert, EVENT_ID, "wss://a.example")
    await migrated.execute(insert, EVENT_ID, "wss://b.example")
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrated.execute(insert, EVENT_ID, "wss://a.example")


async def test_relay_checks_network_and_defaults_to_candidate(migrated: Any) -> None:
    insert = (
        "INSERT INTO relays (url, network, source, discovered_at) VALUES ($1, $2, 'seed', now())"
    )
    await migrated.execute(insert, "wss://relay.example.com", "clearnet")
    assert await migrated.fetchval("SELECT status FROM relays") == "candidate"
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrated.execute(insert, "wss://relay.example.com", "clearnet")
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated.execute(insert, "wss://other.example.com", "internet")


async def test_metadata_documents_are_stored_once_and_referenced(migrated: Any) -> None:
    digest = hashlib.sha256(b'{"name":"x"}').digest()
    document = "INSERT INTO metadata_documents VALUES ($1, $2, $3::jsonb, now())"
    await migrated.execute(document, digest, "nip11", '{"name": "x"}')
    await migrated.execute(document, digest, "nip66", '{"name": "x"}')
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrated.execute(document, digest, "nip11", '{"name": "x"}')

    observation = "INSERT INTO relay_metadata VALUES ($1, $2, $3, $4)"
    await migrated.execute(observation, "wss://r.example", "nip11", OBSERVED_AT, digest)
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrated.execute(observation, "wss://r.example", "nip11", OBSERVED_AT, digest)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await migrated.execute(observation, "wss://r.example", "dns", OBSERVED_AT, digest)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await migrated.execute(observation, "wss://r.example", "nip11", LATER, bytes(32))


async def test_probe_and_sink_offset_keys_are_unique(migrated: Any) -> None:
    probe = "INSERT INTO relay_probes (relay_url, probed_at, open_ok) VALUES ($1, $2, true)"
    await migrated.execute(probe, "wss://r.example", OBSERVED_AT)
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrated.execute(probe, "wss://r.example", OBSERVED_AT)

    offset = (
        "INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset) "
        "VALUES ('sink', 'bigbrotr.events', $1, $2)"
    )
    await migrated.execute(offset, 0, 42)
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrated.execute(offset, 0, 43)
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated.execute(offset, 1, -1)
