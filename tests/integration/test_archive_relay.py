"""The archive as a NIP-01 relay: events go through Kafka and the real sink into PostgreSQL, and
`bigbrotr api` serves them to nostr-sdk's client (written by others) and to raw websockets."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import nostr_sdk  # type: ignore[import-untyped]
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from bigbrotr.config import load_settings
from bigbrotr.migrate import migrate
from bigbrotr.nostr import (
    Event,
    Filter,
    event_from_object,
    event_to_dict,
    event_to_json,
    matches,
    sign_event,
)
from bigbrotr.topics import create_topics, new_admin
from tests.support.api import api_process, scratch_database
from tests.support.events import TEST_KEYS
from tests.support.sink import end_offsets, sink_processes, wait_progress
from tests.support.sink_load import RELAYS, Loader

pytestmark = pytest.mark.integration

EVENTS = 300
MAX_LIMIT = 50
TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True)
class Relay:
    url: str
    base: str
    events: list[Event]


@pytest.fixture(scope="module")
async def relay(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Relay]:
    """The Loader's events produced to Kafka, stored by `bigbrotr sink`, served by `bigbrotr
    api` with a small max_limit, two subscriptions per connection and 4 KiB frames."""
    prefix = f"test.{uuid.uuid4().hex[:12]}."
    logs = tmp_path_factory.mktemp("archive-relay")
    async with scratch_database(postgres_url) as dsn:
        settings = load_settings(
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": prefix},
            database={"url": dsn},
        )
        try:
            create_topics(settings.kafka)
            await migrate(dsn)
            loader = Loader(settings)
            loader.relays()
            loader.events(EVENTS, "archive relay")
            loader.probes(1)
            loader.flush()
            with sink_processes(settings, logs, batch_max_wait_s=0.05) as sinks:
                sinks.start()
                await wait_progress(dsn, end_offsets(settings), 1.0, within=40)
            api = {
                "max_limit": str(MAX_LIMIT),
                "default_limit": "20",
                "relay_max_subscriptions": "2",
                "relay_max_message_bytes": "4096",
                "rate_limit": "10000/second",
            }
            with api_process(dsn, logs, **api) as base:
                url = base.replace("http://", "ws://")
                yield Relay(url, base, await _archived(dsn))
        finally:
            admin = new_admin(kafka_bootstrap)
            topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
            for future in admin.delete_topics(topics, operation_timeout=30).values():
                future.result(30)


async def _archived(dsn: str) -> list[Event]:
    """What the sink stored, read with plain SQL (signatures differ on every signing, so the
    archive, not a second signing of the same events, is what the relay must serve)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT encode(id, 'hex') AS id, encode(pubkey, 'hex') AS pubkey, created_at, kind, "
            "tags::text AS tags, content, encode(sig, 'hex') AS sig FROM events"
        )
    finally:
        await conn.close()
    assert len(rows) == EVENTS
    events = [event_from_object({**dict(row), "tags": json.loads(row["tags"])}) for row in rows]
    return sorted(events, key=lambda event: (event.created_at, event.id))


def _newest(events: list[Event], obj: dict[str, Any], limit: int) -> list[Event]:
    flt = Filter.from_dict(obj)
    found = sorted((e for e in events if matches(flt, e)), key=lambda e: (-e.created_at, e.id))
    return found[:limit]


async def _client(url: str) -> Any:
    client = nostr_sdk.Client()
    await client.add_relay(nostr_sdk.RelayUrl.parse(url))
    await client.connect()
    return client


async def test_nostr_sdk_client_gets_the_archived_events_and_they_verify(relay: Relay) -> None:
    author = relay.events[1].pubkey
    wanted = [relay.events[7].id, relay.events[150].id, relay.events[299].id]
    queries: list[tuple[Any, dict[str, Any]]] = [
        (
            nostr_sdk.Filter().author(nostr_sdk.PublicKey.parse(author)).limit(10),
            {"authors": [author], "limit": 10},
        ),
        (
            nostr_sdk.Filter().ids([nostr_sdk.EventId.parse(i) for i in wanted]),
            {"ids": wanted},
        ),
        (
            nostr_sdk.Filter().hashtag("bigbrotr").kind(nostr_sdk.Kind(1)).limit(1000),
            {"#t": ["bigbrotr"], "kinds": [1], "limit": MAX_LIMIT},
        ),
        (
            nostr_sdk.Filter()
            .since(nostr_sdk.Timestamp.from_secs(relay.events[100].created_at))
            .until(nostr_sdk.Timestamp.from_secs(relay.events[120].created_at)),
            {"since": relay.events[100].created_at, "until": relay.events[120].created_at},
        ),
    ]
    client = await _client(relay.url)
    try:
        for sdk_filter, obj in queries:
            got = await client.fetch_events(nostr_sdk.ReqTarget.auto([sdk_filter]), TIMEOUT)
            expected = _newest(relay.events, obj, obj.get("limit", 20))
            assert expected, obj
            assert all(event.verify() for event in got)
            by_id = {event.id().to_hex(): json.loads(event.as_json()) for event in got}
            assert by_id == {e.id: event_to_dict(e) for e in expected}, obj
    finally:
        await client.shutdown()


async def test_publishing_through_nostr_sdk_is_refused_as_blocked(relay: Relay) -> None:
    note = sign_event(TEST_KEYS[0], 1_700_000_000, 1, [], "may I write here?")
    client = await _client(relay.url)
    try:
        output = await client.send_event(nostr_sdk.Event.from_json(event_to_json(note)))
    finally:
        await client.shutdown()
    assert output.success == []
    [message] = output.failed.values()
    assert message.startswith("blocked: this relay is a read-only archive")


async def _frames_until(ws: Any, first: str) -> list[Any]:
    """Every frame up to and including the first whose type is `first`."""
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        frames.append(frame)
        if frame[0] == first:
            return frames


async def test_raw_protocol_filters_subscriptions_and_refusals(relay: Relay) -> None:
    a, b = relay.events[10], relay.events[11]
    async with websockets.connect(relay.url) as ws:
        # Two filters over one event: it is sent once, then EOSE.
        await ws.send(json.dumps(["REQ", "both", {"ids": [a.id, b.id]}, {"ids": [a.id]}]))
        frames = await _frames_until(ws, "EOSE")
        assert frames[-1] == ["EOSE", "both"]
        assert sorted(f[2]["id"] for f in frames[:-1]) == sorted([a.id, b.id])
        # A limit over the maximum is capped, as the NIP-11 document says.
        await ws.send(json.dumps(["REQ", "big", {"limit": 10_000}]))
        assert len(await _frames_until(ws, "EOSE")) == MAX_LIMIT + 1
        # Two are open; a third is refused until one is closed.
        await ws.send(json.dumps(["REQ", "third", {"limit": 1}]))
        assert await _frames_until(ws, "CLOSED") == [
            [
                "CLOSED",
                "third",
                "error: 2 subscriptions are open on this connection; CLOSE one first",
            ]
        ]
        await ws.send(json.dumps(["CLOSE", "big"]))
        await ws.send(json.dumps(["REQ", "third", {"limit": 1}]))
        assert len(await _frames_until(ws, "EOSE")) == 2
        await ws.send(json.dumps(["REQ", "bad", {"kinds": ["one"]}]))
        [closed] = await _frames_until(ws, "CLOSED")
        assert closed[:2] == ["CLOSED", "bad"]
        assert closed[2].startswith("invalid: filter 'kinds'")
        await ws.send(json.dumps(["REQ", "search", {"search": "x"}]))
        assert (await _frames_until(ws, "CLOSED"))[0][2].startswith("invalid: NIP-50")
        await ws.send("not json")
        assert (await _frames_until(ws, "NOTICE"))[0][1].startswith("invalid: not JSON")
        await ws.send(json.dumps(["EVENT", event_to_dict(a)]))
        ok = (await _frames_until(ws, "OK"))[0]
        assert ok[:3] == ["OK", a.id, False]
        assert ok[3].startswith("blocked:")


async def test_a_frame_over_the_size_limit_closes_the_connection_with_1009(relay: Relay) -> None:
    async with websockets.connect(relay.url) as ws:
        await ws.send(json.dumps(["REQ", "huge", {"#t": ["x" * 5000]}]))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_relays_the_sink_stored_are_served_with_their_nip11(relay: Relay) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=relay.base) as client:
        page = (await client.get("/relays")).json()
    assert [r["url"] for r in page["relays"]] == sorted(RELAYS)
    assert all(
        r["nip11"] == {"name": "relay", "software": "test", "version": 0} for r in page["relays"]
    )
    assert all(r["health"]["last_probe"]["open_ok"] for r in page["relays"])
