"""The synchronizer with NIP-77 against real relays, a real broker and a real database: a relay
that caps every REQ far below a crowded second is still pulled whole, a re-sync moves only what
the archive lacks, and a relay without NIP-77 is paged as before.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.migrate import migrate
from bigbrotr.nostr import Event, parse_event
from bigbrotr.producer import Producer
from connectors.client import Fetched, NegEnd, NegentropyLimits, RelayClient
from connectors.known_ids import DatabaseKnownIds
from connectors.negentropy_pull import MAX_PARTS, NOT_NIP77, NegentropyPuller
from connectors.sync import Coverage
from connectors.synchronizer import SyncReport, sync_relay
from tests.support.events import BASE_TIME, make_events
from tests.support.loader import load_events
from tests.support.relays import LOW_CAP, RunningRelay, local_relay, nostr_relay
from tests.support.topic_read import Offsets, read_to_end

pytestmark = pytest.mark.integration

SINCE, UNTIL = BASE_TIME, BASE_TIME + 86_400
CROWDED = BASE_TIME + 30_000
PROMPTLY = 60.0
CODEC = Codec()


@pytest.fixture(scope="module")
def first_events() -> list[Event]:
    """3000 events over a day and 400 in one second from a single author: eight times the
    relay's cap, and no kind or author split can cut that second below it."""
    spread = make_events(3000, label="neg sync spread")
    crowd = make_events(400, since=CROWDED, same_second=True, label="neg sync crowd", author=1)
    return spread + crowd


@pytest.fixture(scope="module")
def later_events() -> list[Event]:
    """What reaches the relay after the first sync: some in the crowded second, some spread."""
    crowd = make_events(60, since=CROWDED, same_second=True, label="neg sync late", author=1)
    return crowd + make_events(90, label="neg sync later")


@pytest.fixture(scope="module")
async def capped_relay(
    tmp_path_factory: pytest.TempPathFactory, first_events: list[Event]
) -> AsyncIterator[RunningRelay]:
    with local_relay(tmp_path_factory.mktemp("neg-sync"), max_limit=LOW_CAP) as relay:
        assert await load_events(relay.url, first_events) == {e.id for e in first_events}
        yield relay


@pytest.fixture
async def archive(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def puller(database_url: str) -> AsyncIterator[NegentropyPuller]:
    known = DatabaseKnownIds(database_url)
    try:
        yield NegentropyPuller(known, NegentropyLimits(answer_timeout=1.0))
    finally:
        await known.aclose()


async def sync(
    relay: RunningRelay, settings: Settings, producer: Producer, **kw: Any
) -> SyncReport:
    async with asyncio.timeout(PROMPTLY):
        return await sync_relay(
            relay.url,
            since=SINCE,
            until=UNTIL,
            producer=producer,
            codec=CODEC,
            settings=settings,
            allow=[relay.host_port],
            **kw,
        )


async def read_topic(
    settings: Settings, name: str, schema: str, start: Offsets | None = None
) -> tuple[list[dict[str, Any]], Offsets]:
    """Every value of a topic after `start` (all when None), decoded, and the end offsets."""
    messages, end = await read_to_end(settings, name, start=start, timeout_s=PROMPTLY)
    return [CODEC.decode(schema, m.value) for m in messages], end


async def store_as_the_sink_would(
    conn: asyncpg.Connection, records: Sequence[dict[str, Any]]
) -> None:
    """Rows of `events` and `sightings` for what reached events.raw."""
    seen = datetime.now(UTC)
    events = {event.id: event for event in (parse_event(r["raw"]) for r in records)}
    await conn.executemany(
        "INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, first_seen_at) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8) ON CONFLICT DO NOTHING",
        [
            (
                bytes.fromhex(e.id),
                bytes.fromhex(e.pubkey),
                e.created_at,
                e.kind,
                json.dumps(e.tags),
                e.content,
                bytes.fromhex(e.sig),
                seen,
            )
            for e in events.values()
        ],
    )
    await conn.executemany(
        "INSERT INTO sightings (event_id, relay_url, first_seen_at, last_seen_at) "
        "VALUES ($1, $2, $3, $3) ON CONFLICT DO NOTHING",
        [(bytes.fromhex(parse_event(r["raw"]).id), r["relay_url"], seen) for r in records],
    )


def windows_counted(method: str) -> float:
    """The sync's `bigbrotr_sync_windows_total` for `method`, 0 before the first."""
    return REGISTRY.get_sample_value("bigbrotr_sync_windows_total", {"method": method}) or 0.0


def ids_of(records: Sequence[dict[str, Any]]) -> list[str]:
    return [parse_event(record["raw"]).id for record in records]


async def test_a_capped_relay_is_pulled_whole_and_a_resync_moves_only_new_events(
    capped_relay: RunningRelay,
    first_events: list[Event],
    later_events: list[Event],
    settings: Settings,
    producer: Producer,
    archive: asyncpg.Connection,
    puller: NegentropyPuller,
) -> None:
    reconciled = windows_counted("reconciled")
    report = await sync(capped_relay, settings, producer, negentropy=puller)

    assert report.negentropy is not None
    assert report.negentropy.fallbacks == []
    assert report.negentropy.windows_reconciled == 1
    assert windows_counted("reconciled") == reconciled + 1
    assert report.gaps == ()
    assert report.cursor == Coverage(SINCE, UNTIL)
    records, first_end = await read_topic(settings, "events.raw", "RawEvent")
    assert set(ids_of(records)) == {e.id for e in first_events}
    assert len(records) == len(first_events), "each event was fetched once"
    # Chunks of a page (500) shrink to the 50 the relay sends after the first answer.
    assert report.requests <= len(first_events) // LOW_CAP + 2
    assert puller.supports(capped_relay.url) is True
    cursors, _ = await read_topic(settings, "sync-cursors", "SyncCursor")
    assert cursors[-1]["method"] == "negentropy"

    await store_as_the_sink_would(archive, records)
    assert await load_events(capped_relay.url, later_events) == {e.id for e in later_events}
    again = await sync(capped_relay, settings, producer, negentropy=puller)

    assert again.gaps == ()
    assert again.negentropy is not None
    assert again.negentropy.needed == len(later_events)
    moved, _ = await read_topic(settings, "events.raw", "RawEvent", first_end)
    assert sorted(ids_of(moved)) == sorted(e.id for e in later_events)


async def test_a_relay_without_nip77_is_paged_and_not_asked_again(
    tmp_path_factory: pytest.TempPathFactory,
    settings: Settings,
    producer: Producer,
    archive: asyncpg.Connection,
    puller: NegentropyPuller,
) -> None:
    events = make_events(120, label="neg fallback")
    paged = windows_counted("paged")
    with nostr_relay(tmp_path_factory.mktemp("neg-fallback")) as relay:
        assert await load_events(relay.url, events) == {e.id for e in events}
        # A cursor settling one hour in the middle leaves two windows: above and below it.
        middle = Coverage(SINCE + 40_000, SINCE + 43_600)
        report = await sync(relay, settings, producer, negentropy=puller, cursor=middle)

    assert report.negentropy is not None
    first, second = report.negentropy.fallbacks
    assert "negentropy unsupported: no answer to NEG-OPEN" in first
    assert second.endswith(NOT_NIP77)
    assert report.negentropy.windows_reconciled == 0
    assert windows_counted("paged") == paged + 2
    assert puller.supports(relay.url) is False
    assert report.cursor == Coverage(SINCE, UNTIL), "paging proved both windows, no gaps"
    records, _ = await read_topic(settings, "events.raw", "RawEvent")
    outside = {e.id for e in events if not SINCE + 40_000 < e.created_at <= SINCE + 43_600}
    assert set(ids_of(records)) >= outside
    cursors, _ = await read_topic(settings, "sync-cursors", "SyncCursor")
    assert cursors[-1]["method"] == "bisection"


BUSY = 52_000  # above the 50,000 items nostr-sdk 0.45's LocalRelay reconciles at once
LOAD_CHUNK = 5_000  # events per loading connection: LocalRelay resets one that sends many more


async def test_a_window_too_big_for_the_relay_is_reconciled_in_parts_not_paged(
    tmp_path_factory: pytest.TempPathFactory,
    archive: asyncpg.Connection,
    puller: NegentropyPuller,
) -> None:
    """A busy relay's renewal window holds more events than the relay reconciles in one set:
    paging it would fetch every event again, so it is reconciled in halves instead."""
    events = make_events(BUSY, label="neg busy")
    fetched: list[str] = []

    async def publish(answer: Fetched) -> None:
        fetched.extend(received.event_id or "" for received in answer.events)

    with local_relay(tmp_path_factory.mktemp("neg-busy")) as relay:
        for start in range(0, BUSY, LOAD_CHUNK):
            await load_events(relay.url, events[start : start + LOAD_CHUNK])
        async with (
            asyncio.timeout(PROMPTLY),
            RelayClient(relay.url, allow=[relay.host_port]) as client,
        ):
            window = await puller.pull(client, SINCE, UNTIL, base=None, chunk=500, publish=publish)

    assert window.reconciliations, window.reason
    first = window.reconciliations[0]
    assert first.end is NegEnd.REFUSED, "the whole window should be too big for the relay"
    assert "too many" in first.detail
    assert window.proved, window.reason
    assert all(part.end in (NegEnd.DONE, NegEnd.REFUSED) for part in window.reconciliations)
    assert len(window.reconciliations) <= MAX_PARTS
    assert sorted(fetched) == sorted(e.id for e in events), "every event fetched once"
