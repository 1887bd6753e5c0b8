"""The synchronizer against real relays and a real broker: what a relay holds ends up in
`events.raw`, exactly as sent, and whatever could not be proven pulled is a gap in the cursor.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.nostr import Event, Filter, parse_event
from bigbrotr.producer import Producer
from connectors.client import ClientLimits, EndReason
from connectors.sync import Coverage
from connectors.synchronizer import SyncReport, load_cursor, sync_relay
from tests.support.events import BASE_TIME, history, make_events
from tests.support.hostile_relay import Behaviour, HostileRelay
from tests.support.loader import load_events
from tests.support.relays import LOW_CAP, RunningRelay, local_relay, nostr_relay
from tests.support.topic_read import Offsets, read_to_end

pytestmark = pytest.mark.integration

SINCE, UNTIL = BASE_TIME, BASE_TIME + 86_400
BURST_SECOND = BASE_TIME + 40_000
PROMPTLY = 40.0
CODEC = Codec()


@pytest.fixture(scope="module")
def burst_events() -> list[Event]:
    """300 events over the day and 240 in one second: far more than the low cap of 50."""
    spread = make_events(300, label="sync spread")
    return spread + make_events(240, since=BURST_SECOND, same_second=True, label="sync burst")


@pytest.fixture(scope="module")
def crowded_history() -> list[Event]:
    """3000 events over the day (the newest in the window's top second) and, in each of two
    seconds, 150 events of two kinds (three times the low cap), with two events just below each.
    """
    events = make_events(3000, label="nostr-relay spread")
    for second in (BASE_TIME + 20_000, BASE_TIME + 70_000):
        for kind in (1, 7):
            label = f"crowded {second} kind {kind}"
            events += make_events(75, since=second, same_second=True, kind=kind, label=label)
        events += make_events(2, since=second - 1, same_second=True, label=f"below {second}")
    return events


@pytest.fixture(scope="module")
async def low_cap_nostr_relay(
    tmp_path_factory: pytest.TempPathFactory, crowded_history: list[Event]
) -> AsyncIterator[tuple[RunningRelay, set[str]]]:
    """nostr-relay (exclusive `until`) answering at most `LOW_CAP` events per REQ, and the ids
    it acknowledged.
    """
    with nostr_relay(tmp_path_factory.mktemp("sync-nostr-relay"), max_limit=LOW_CAP) as relay:
        held = await load_events(relay.url, crowded_history)
        assert held == {event.id for event in crowded_history}
        yield relay, held


@pytest.fixture(scope="module")
async def low_cap_burst_relay(
    tmp_path_factory: pytest.TempPathFactory, burst_events: list[Event]
) -> AsyncIterator[RunningRelay]:
    with local_relay(tmp_path_factory.mktemp("sync-low-cap"), max_limit=LOW_CAP) as relay:
        assert await load_events(relay.url, burst_events) == {event.id for event in burst_events}
        yield relay


async def sync(
    url: str, allow: str, settings: Settings, producer: Producer, **kw: Any
) -> SyncReport:
    async with asyncio.timeout(PROMPTLY):
        return await sync_relay(
            url,
            since=SINCE,
            until=UNTIL,
            producer=producer,
            codec=CODEC,
            settings=settings,
            allow=[allow],
            **kw,
        )


async def raw_records(
    settings: Settings, start: Offsets | None = None
) -> tuple[list[tuple[bytes | None, dict[str, Any]]], Offsets]:
    """Every `events.raw` record after `start` (all when None), decoded, and the end offsets."""
    messages, end = await read_to_end(settings, "events.raw", start=start, timeout_s=PROMPTLY)
    return [(m.key, CODEC.decode("RawEvent", m.value)) for m in messages], end


def ids_of(records: Sequence[tuple[bytes | None, dict[str, Any]]]) -> set[str]:
    return {parse_event(value["raw"]).id for _, value in records}


def copies(records: Sequence[tuple[bytes | None, dict[str, Any]]]) -> Counter[str]:
    """How many records each event id has."""
    return Counter(parse_event(value["raw"]).id for _, value in records)


def once_each(events: Sequence[Event]) -> Counter[str]:
    return Counter(event.id for event in events)


def shared_seconds() -> list[Event]:
    """40 events over the day and 40 seconds holding 3 each: pages of `LOW_CAP` end inside a
    second, so the next page must read that second again.
    """
    events = make_events(40, label="once spread")
    for n in range(40):
        since = SINCE + 1_000 + 2_000 * n
        events += make_events(3, since=since, same_second=True, label=f"once second {n}")
    return events


def in_gaps(coverage: Coverage, events: Sequence[Event]) -> set[str]:
    return {
        event.id
        for event in events
        if any(gap.since <= event.created_at <= gap.until for gap in coverage.gaps)
    }


async def test_whole_history_reaches_events_raw_and_resume_repeats_only_the_edge(
    local_relay_history: RunningRelay, settings: Settings, producer: Producer
) -> None:
    """LocalRelay's cap (500) is above its 400-event second, so that second is pulled whole."""
    relay = local_relay_history
    report = await sync(relay.url, relay.host_port, settings, producer)

    assert report.gaps == ()
    assert report.cursor == Coverage(SINCE, UNTIL)
    assert report.end_reasons == {EndReason.EOSE: report.requests}
    records, first_end = await raw_records(settings)
    assert len(records) == report.published
    assert copies(records) == once_each(history())
    for key, value in records:
        assert key == parse_event(value["raw"]).id.encode()
        assert (value["relay_url"], value["source"]) == (relay.url, "sync")
    assert await load_cursor(settings, relay.url) == report.cursor

    again = await sync(relay.url, relay.host_port, settings, producer, cursor=report.cursor)

    repeated, _ = await raw_records(settings, first_end)
    edge = [event for event in history() if event.created_at == UNTIL]
    assert edge, "the test needs an event in the newest second"
    assert copies(repeated) == once_each(edge)
    assert again.pulled == Coverage(UNTIL, UNTIL)
    assert again.cursor == Coverage(SINCE, UNTIL)


async def test_a_relay_reading_until_exclusively_is_pulled_whole(
    low_cap_nostr_relay: tuple[RunningRelay, set[str]],
    crowded_history: list[Event],
    settings: Settings,
    producer: Producer,
) -> None:
    """nostr-relay matches `created_at < until`; the planner learns it and asks one second more.

    Its cap is far below a page and below each crowded second; listing the kinds and authors lets
    the planner split those seconds until every part is proven.
    """
    relay, held = low_cap_nostr_relay
    base = Filter(kinds=[1, 7], authors=sorted({event.pubkey for event in crowded_history}))
    report = await sync(relay.url, relay.host_port, settings, producer, base=base)

    assert report.gaps == ()
    assert report.cursor == Coverage(SINCE, UNTIL)
    assert report.cap.until_exclusive is True
    assert report.cap.floor == LOW_CAP
    assert report.end_reasons == {EndReason.EOSE: report.requests}
    records, _ = await raw_records(settings)
    assert len(records) == report.published
    assert copies(records) == Counter(held)


@pytest.mark.parametrize("cap", [None, LOW_CAP], ids=["uncapped", "low-cap"])
@pytest.mark.parametrize("serve", [nostr_relay, local_relay], ids=["nostr-relay", "LocalRelay"])
async def test_one_sync_publishes_each_event_exactly_once(
    serve: Callable[..., AbstractContextManager[RunningRelay]],
    cap: int | None,
    tmp_path: Path,
    settings: Settings,
    producer: Producer,
) -> None:
    """Pages overlap by a second and the cap is probed, but a relay answering correctly has each
    event in `events.raw` once: nothing re-read is published again.
    """
    events = shared_seconds()
    with serve(tmp_path, **({} if cap is None else {"max_limit": cap})) as relay:
        assert await load_events(relay.url, events) == {event.id for event in events}
        report = await sync(relay.url, relay.host_port, settings, producer)

    assert report.gaps == ()
    assert report.cap.probed
    if cap is not None:
        assert report.cap.floor == cap, "pages were cut by the cap, so seconds were read again"
    records, _ = await raw_records(settings)
    assert copies(records) == once_each(events)
    assert report.published == len(events)


async def test_a_cap_below_a_crowded_second_leaves_a_visible_gap_and_nothing_else(
    low_cap_burst_relay: RunningRelay,
    burst_events: list[Event],
    settings: Settings,
    producer: Producer,
) -> None:
    relay = low_cap_burst_relay
    report = await sync(relay.url, relay.host_port, settings, producer)

    assert [(gap.since, gap.until) for gap in report.gaps] == [(BURST_SECOND, BURST_SECOND)]
    assert "more events in this second" in report.gaps[0].reason
    assert report.cursor.span == (SINCE, UNTIL)
    records, _ = await raw_records(settings)
    published = ids_of(records)
    held = {event.id for event in burst_events}
    assert held - in_gaps(report.cursor, burst_events) <= published <= held
    assert await load_cursor(settings, relay.url) == report.cursor


async def test_a_relay_flooding_garbage_ends_as_a_gap_over_the_window(
    hostile: HostileRelay, settings: Settings, producer: Producer
) -> None:
    report = await sync(
        hostile.url_for(Behaviour.GARBAGE_FLOOD), hostile.host_port, settings, producer
    )

    assert report.end_reasons == {EndReason.PROTOCOL_ERROR: 1}
    assert report.published == 0
    assert [(gap.since, gap.until) for gap in report.gaps] == [(SINCE, UNTIL)]
    assert EndReason.PROTOCOL_ERROR in report.gaps[0].reason
    cursor = await load_cursor(settings, hostile.url_for(Behaviour.GARBAGE_FLOOD))
    assert cursor == report.cursor
    assert await load_cursor(settings, "wss://never.synced.example") is None


async def test_forged_events_are_published_exactly_as_sent(
    hostile: HostileRelay, settings: Settings, producer: Producer
) -> None:
    report = await sync(
        hostile.url_for(Behaviour.BAD_EVENTS), hostile.host_port, settings, producer
    )

    assert report.end_reasons == {EndReason.EOSE: report.requests}
    records, _ = await raw_records(settings)
    assert sorted(value["raw"] for _, value in records) == sorted(
        text.encode() for text in hostile.sent_events
    )


UNREADABLE = '{"id": "not an id", "kind": "one", "content": 7}'


async def test_event_objects_that_cannot_be_parsed_are_published_raw(
    settings: Settings, producer: Producer
) -> None:
    async def answer(ws: ServerConnection) -> None:
        async for frame in ws:
            message = json.loads(frame)
            if message[0] == "REQ":
                await ws.send(f'["EVENT", {json.dumps(message[1])}, {UNREADABLE}]')
                await ws.send(json.dumps(["EOSE", message[1]]))

    async with serve(answer, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        report = await sync(f"ws://127.0.0.1:{port}", f"127.0.0.1:{port}", settings, producer)

    assert report.unreadable == report.published == report.requests >= 1
    assert [(gap.since, gap.until) for gap in report.gaps] == [(SINCE, UNTIL)]
    assert "could not be parsed" in report.gaps[0].reason
    records, _ = await raw_records(settings)
    assert {(key, value["raw"]) for key, value in records} == {(b"not an id", UNREADABLE.encode())}
    assert len(records) == report.published


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        (Behaviour.DISCONNECT, EndReason.DISCONNECTED),
        (Behaviour.NO_EOSE, EndReason.IDLE_TIMEOUT),
        (Behaviour.OVERSIZED, EndReason.TOO_LARGE),
    ],
)
async def test_a_relay_failing_mid_answer_leaves_its_events_published_and_a_named_gap(
    hostile: HostileRelay,
    settings: Settings,
    producer: Producer,
    behaviour: Behaviour,
    reason: EndReason,
) -> None:
    """What arrived before the failure is kept; what could not be proven is a visible gap."""
    url = hostile.url_for(behaviour)
    limits = ClientLimits(idle_timeout=0.5, max_frame_bytes=1 << 20)
    report = await sync(url, hostile.host_port, settings, producer, limits=limits)

    assert report.end_reasons == {reason: 1}
    records, _ = await raw_records(settings)
    assert sorted(value["raw"] for _, value in records) == sorted(
        text.encode() for text in hostile.sent_events
    )
    assert report.published == len(records) == len(hostile.sent_events)
    # An unfinished answer proves nothing: the whole window is a gap that names the failure.
    assert [(gap.since, gap.until) for gap in report.gaps] == [(SINCE, UNTIL)]
    assert reason in report.gaps[0].reason
    assert await load_cursor(settings, url) == report.cursor
