"""The relay client against real relays (nostr-relay, rust-nostr's LocalRelay), our hostile relay,
and a real SOCKS5 proxy. Every hostile case must end with its own reason, promptly: each runs
under `PROMPTLY` seconds, far above the limits it sets, so a hang fails instead of blocking.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from pathlib import Path

import pytest

from bigbrotr.devstack.process import free_port
from bigbrotr.nostr import Filter, InvalidEvent, RejectReason, parse_event, verify
from connectors.client import ClientLimits, EndReason, Fetched, RelayClient
from connectors.client.dial import dial
from tests.support.events import BASE_TIME, TEST_KEYS, history, make_events
from tests.support.hostile_relay import GARBAGE_FRAMES, Behaviour, HostileRelay
from tests.support.loader import load_events
from tests.support.relays import LOW_CAP, RunningRelay, local_relay
from tests.support.socks_proxy import socks_proxy

pytestmark = pytest.mark.integration

PROMPTLY = 20.0
ALL = [Filter(since=0)]
ONION = f"ws://{'bigbrotrtestrelay'.ljust(56, 'a')}.onion"


async def fetch(url: str, allow: str, *, limits: ClientLimits | None = None, **kw: str) -> Fetched:
    async with asyncio.timeout(PROMPTLY), RelayClient(url, allow=[allow], limits=limits, **kw) as c:
        return await c.fetch(ALL)


def quick(**overrides: float) -> ClientLimits:
    """Limits small enough to trip within a second; the rest generous."""
    limits = ClientLimits(idle_timeout=1.0, total_timeout=5.0, connect_timeout=1.0)
    return dataclasses.replace(limits, **overrides)


# Real relays


async def test_nostr_relay_serves_the_whole_history_exactly(
    nostr_relay_history: RunningRelay,
) -> None:
    fetched = await fetch(nostr_relay_history.url, nostr_relay_history.host_port)
    assert fetched.result.end_reason is EndReason.EOSE
    assert {parse_event(event.text) for event in fetched.events} == set(history())
    assert len(fetched.events) == fetched.result.events == len(history())
    assert fetched.result.connect_ms is not None
    assert fetched.result.eose_ms is not None
    assert fetched.result.first_event_ms is not None


async def test_claimed_ids_and_times_match_the_event_text(
    nostr_relay_history: RunningRelay,
) -> None:
    fetched = await fetch(nostr_relay_history.url, nostr_relay_history.host_port)
    for received in fetched.events:
        event = parse_event(received.text)
        verify(event)
        assert (received.event_id, received.created_at) == (event.id, event.created_at)


async def test_local_relay_serves_the_whole_history_window_by_window(
    local_relay_history: RunningRelay,
) -> None:
    """LocalRelay answers at most 500 per REQ: hourly windows stay under it, on one socket."""
    received: set[str] = set()
    results = []
    async with (
        asyncio.timeout(PROMPTLY),
        RelayClient(local_relay_history.url, allow=[local_relay_history.host_port]) as client,
    ):
        for start in range(BASE_TIME, BASE_TIME + 86_400 + 1, 3600):
            fetched = await client.fetch([Filter(since=start, until=start + 3599)])
            results.append(fetched.result)
            received |= {parse_event(event.text).id for event in fetched.events}
    assert received == {event.id for event in history()}
    assert all(result.end_reason is EndReason.EOSE for result in results)
    assert results[0].connect_ms is not None
    assert all(result.connect_ms is None for result in results[1:])


async def test_a_low_cap_relay_returns_its_cap_then_eose(low_cap_relay: RunningRelay) -> None:
    fetched = await fetch(low_cap_relay.url, low_cap_relay.host_port)
    assert fetched.result.end_reason is EndReason.EOSE
    assert len(fetched.events) == LOW_CAP
    newest = sorted(make_events(200, label="low cap"), key=lambda event: -event.created_at)
    assert {event.event_id for event in fetched.events} == {e.id for e in newest[:LOW_CAP]}


async def test_live_subscription_streams_new_events_until_the_caller_stops(
    tmp_path: Path,
) -> None:
    """Events published after EOSE arrive on the open subscription; leaving keeps the socket."""
    fresh = make_events(3, label="live")
    streamed: list[str] = []
    with local_relay(tmp_path) as relay:
        client = RelayClient(relay.url, allow=[relay.host_port])
        async with asyncio.timeout(PROMPTLY), client:
            subscription = client.subscribe(ALL, live=True)

            async def publish_after_eose() -> set[str]:
                while subscription.result.eose_ms is None:  # noqa: ASYNC110  (no EOSE signal)
                    await asyncio.sleep(0.01)
                return await load_events(relay.url, fresh)

            async with subscription:
                publisher = asyncio.create_task(publish_after_eose())
                async for event in subscription:
                    streamed.append(parse_event(event.text).id)
                    if len(streamed) == len(fresh):
                        break
            await publisher
            assert client.connected
    assert subscription.result.end_reason is EndReason.STOPPED
    assert subscription.result.eose_ms is not None
    assert sorted(streamed) == sorted(event.id for event in fresh)


async def test_nip42_with_a_key_authenticates_and_reads(auth_relay: RunningRelay) -> None:
    fetched = await fetch(auth_relay.url, auth_relay.host_port, secret_key=TEST_KEYS[1])
    assert fetched.result.end_reason is EndReason.EOSE
    assert fetched.result.authenticated
    assert {event.event_id for event in fetched.events} == {
        event.id for event in make_events(30, label="auth")
    }


async def test_nip42_without_a_key_ends_auth_required(auth_relay: RunningRelay) -> None:
    fetched = await fetch(auth_relay.url, auth_relay.host_port)
    assert fetched.result.end_reason is EndReason.AUTH_REQUIRED
    assert fetched.result.detail.startswith("auth-required:")
    assert fetched.events == []


# The SSRF guard and the proxy


async def test_loopback_relays_are_refused_unless_allow_listed(hostile: HostileRelay) -> None:
    async with asyncio.timeout(PROMPTLY), RelayClient(hostile.url) as client:
        fetched = await client.fetch(ALL)
    assert fetched.result.end_reason is EndReason.URL_REFUSED
    assert "allow-list" in fetched.result.detail
    assert hostile.connections == 0


async def test_an_invalid_url_is_refused() -> None:
    async with RelayClient("https://example.com") as client:
        fetched = await client.fetch(ALL)
    assert fetched.result.end_reason is EndReason.URL_REFUSED
    assert fetched.result.relay_url == "https://example.com"


async def test_a_closed_port_fails_to_connect() -> None:
    port = free_port()
    fetched = await fetch(f"ws://127.0.0.1:{port}", f"127.0.0.1:{port}")
    assert fetched.result.end_reason is EndReason.CONNECT_FAILED
    assert "refused" in fetched.result.detail.lower()


async def test_onion_relays_are_dialled_through_the_socks_proxy(hostile: HostileRelay) -> None:
    async with (
        asyncio.timeout(PROMPTLY),
        socks_proxy(hostile.host_port) as proxy,
        RelayClient(ONION, proxy=proxy.url) as client,
    ):
        fetched = await client.fetch(ALL)
    assert fetched.result.end_reason is EndReason.EOSE
    assert [event.event_id for event in fetched.events] == [e.id for e in hostile.events]
    assert any(f"{ONION.removeprefix('ws://')}:80" in line for line in proxy.requests)
    assert hostile.connections == 1


async def test_sockets_send_small_frames_at_once(hostile: HostileRelay) -> None:
    """Nagle's algorithm would hold a REQ sent after a CLOSE until the relay's delayed ACK."""
    async with asyncio.timeout(PROMPTLY), socks_proxy(hostile.host_port) as proxy:
        for url, via in ((hostile.url, None), (ONION, proxy.url)):
            ws = await dial(url, allow=[hostile.host_port], proxy=via, limits=ClientLimits())
            sock = ws.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            await ws.close()


async def test_onion_relays_without_a_proxy_fail_to_connect() -> None:
    async with RelayClient(ONION) as client:
        fetched = await client.fetch(ALL)
    assert fetched.result.end_reason is EndReason.CONNECT_FAILED
    assert "SOCKS5 proxy" in fetched.result.detail


# The hostile relay, one behaviour at a time


async def test_events_come_back_as_the_exact_text_sent(hostile: HostileRelay) -> None:
    fetched = await fetch(hostile.url, hostile.host_port)
    assert fetched.result.end_reason is EndReason.EOSE
    assert [event.text for event in fetched.events] == hostile.sent_events
    assert all(" : " in event.text for event in fetched.events)  # not re-serialised


async def test_garbage_frames_are_counted_and_skipped(hostile: HostileRelay) -> None:
    fetched = await fetch(hostile.url_for(Behaviour.GARBAGE), hostile.host_port)
    assert fetched.result.end_reason is EndReason.EOSE
    assert fetched.result.garbage_frames == len(GARBAGE_FRAMES)
    assert len(fetched.result.garbage_samples) == 5
    assert [event.event_id for event in fetched.events] == [e.id for e in hostile.events]


async def test_too_much_garbage_is_a_protocol_error(hostile: HostileRelay) -> None:
    limits = quick(max_garbage_frames=3)
    fetched = await fetch(hostile.url_for(Behaviour.GARBAGE), hostile.host_port, limits=limits)
    assert fetched.result.end_reason is EndReason.PROTOCOL_ERROR
    assert fetched.result.garbage_frames == 4


async def test_a_garbage_flood_is_a_protocol_error(hostile: HostileRelay) -> None:
    url = hostile.url_for(Behaviour.GARBAGE_FLOOD)
    fetched = await fetch(url, hostile.host_port, limits=quick())
    assert fetched.result.end_reason is EndReason.PROTOCOL_ERROR


async def test_an_oversized_frame_ends_too_large(hostile: HostileRelay) -> None:
    limits = quick(max_frame_bytes=1 << 20)
    url = hostile.url_for(Behaviour.OVERSIZED)
    async with (
        asyncio.timeout(PROMPTLY),
        RelayClient(url, allow=[hostile.host_port], limits=limits) as client,
    ):
        fetched = await client.fetch(ALL)
        assert not client.connected
    assert fetched.result.end_reason is EndReason.TOO_LARGE
    assert fetched.events == []


async def test_events_failing_verification_are_passed_on_untouched(hostile: HostileRelay) -> None:
    """The validator, not the client, rejects them: it needs the evidence."""
    fetched = await fetch(hostile.url_for(Behaviour.BAD_EVENTS), hostile.host_port)
    assert fetched.result.end_reason is EndReason.EOSE
    assert [event.text for event in fetched.events] == hostile.sent_events
    reasons = []
    for received in fetched.events:
        with pytest.raises(InvalidEvent) as refused:
            verify(parse_event(received.text))
        reasons.append(refused.value.reason)
    assert reasons == [RejectReason.BAD_ID, RejectReason.BAD_SIG]


async def test_a_relay_that_never_sends_eose_ends_idle(hostile: HostileRelay) -> None:
    fetched = await fetch(hostile.url_for(Behaviour.NO_EOSE), hostile.host_port, limits=quick())
    assert fetched.result.end_reason is EndReason.IDLE_TIMEOUT
    assert fetched.result.events == len(hostile.events)


async def test_a_caller_slower_than_the_idle_timeout_is_not_the_relays_silence(
    hostile: HostileRelay,
) -> None:
    """The idle bound is on waiting for the relay; a caller busy (publishing, say) between two
    reads while the relay's messages wait in the buffer reads them all, then EOSE.
    """
    async with (
        asyncio.timeout(PROMPTLY),
        RelayClient(hostile.url, allow=[hostile.host_port], limits=quick(idle_timeout=0.3)) as c,
        c.subscribe(ALL) as subscription,
    ):
        received = []
        async for event in subscription:
            received.append(event.event_id)
            if len(received) in (1, 10):
                await asyncio.sleep(0.7)
    assert subscription.result.end_reason is EndReason.EOSE
    assert received == [event.id for event in hostile.events]


async def test_a_dropped_connection_ends_disconnected(hostile: HostileRelay) -> None:
    url = hostile.url_for(Behaviour.DISCONNECT)
    async with asyncio.timeout(PROMPTLY), RelayClient(url, allow=[hostile.host_port]) as client:
        fetched = await client.fetch(ALL)
        assert not client.connected
        again = await client.fetch(ALL)
    assert fetched.result.end_reason is EndReason.DISCONNECTED
    assert fetched.result.events == len(hostile.events) // 2
    assert again.result.connect_ms is not None  # the next REQ dialled again
    assert hostile.connections == 2


async def test_a_slow_drip_ends_at_the_total_timeout(hostile: HostileRelay) -> None:
    limits = quick(idle_timeout=5.0, total_timeout=1.0)
    fetched = await fetch(hostile.url_for(Behaviour.SLOW_DRIP), hostile.host_port, limits=limits)
    assert fetched.result.end_reason is EndReason.TOTAL_TIMEOUT
    assert 1 <= fetched.result.events < len(hostile.events)


async def test_a_flood_over_the_rate_ends_rate_limited(hostile: HostileRelay) -> None:
    limits = quick(max_messages_per_second=200, message_burst=100)
    fetched = await fetch(hostile.url_for(Behaviour.FLOOD), hostile.host_port, limits=limits)
    assert fetched.result.end_reason is EndReason.RATE_LIMITED
    assert fetched.result.events >= 100


async def test_a_flood_within_the_rate_ends_at_max_events(hostile: HostileRelay) -> None:
    limits = quick(max_events=500)
    fetched = await fetch(hostile.url_for(Behaviour.FLOOD), hostile.host_port, limits=limits)
    assert fetched.result.end_reason is EndReason.MAX_EVENTS
    assert len(fetched.events) == 500


async def test_exactly_max_events_then_eose_is_eose(hostile: HostileRelay) -> None:
    limits = quick(max_events=len(hostile.events))
    fetched = await fetch(hostile.url, hostile.host_port, limits=limits)
    assert fetched.result.end_reason is EndReason.EOSE


async def test_closed_is_recorded_with_its_reason(hostile: HostileRelay) -> None:
    url = hostile.url_for(Behaviour.CLOSED)
    async with asyncio.timeout(PROMPTLY), RelayClient(url, allow=[hostile.host_port]) as client:
        fetched = await client.fetch(ALL)
        assert client.connected
    assert fetched.result.end_reason is EndReason.CLOSED
    assert fetched.result.detail == hostile.closed_reason


async def test_notices_are_recorded(hostile: HostileRelay) -> None:
    fetched = await fetch(hostile.url_for(Behaviour.NOTICE), hostile.host_port)
    assert fetched.result.end_reason is EndReason.EOSE
    assert fetched.result.notices == (hostile.notice,)


async def test_a_stalled_handshake_fails_to_connect(hostile: HostileRelay) -> None:
    fetched = await fetch(hostile.url_for(Behaviour.STALL), hostile.host_port, limits=quick())
    assert fetched.result.end_reason is EndReason.CONNECT_FAILED
    assert fetched.result.connect_ms is None


async def test_a_redirect_is_not_followed(hostile: HostileRelay) -> None:
    """Following it would dial an address the SSRF guard never saw."""
    fetched = await fetch(hostile.url_for(Behaviour.REDIRECT), hostile.host_port, limits=quick())
    assert fetched.result.end_reason is EndReason.CONNECT_FAILED
    assert "redirect" in fetched.result.detail


async def test_nip42_challenge_is_answered_and_the_req_retried(hostile: HostileRelay) -> None:
    url = hostile.url_for(Behaviour.AUTH)
    fetched = await fetch(url, hostile.host_port, secret_key=TEST_KEYS[2])
    assert fetched.result.end_reason is EndReason.EOSE
    assert fetched.result.authenticated
    assert len(fetched.events) == len(hostile.events)
    (auth,) = hostile.messages("AUTH")
    assert auth[1]["kind"] == 22242
    assert ["relay", url] in auth[1]["tags"]
    assert len(hostile.messages("REQ")) == 2


async def test_nip42_refused_ends_auth_failed() -> None:
    refused_key = frozenset({"0" * 64})
    async with HostileRelay(make_events(3), auth_pubkeys=refused_key) as relay:
        url = relay.url_for(Behaviour.AUTH)
        fetched = await fetch(url, relay.host_port, secret_key=TEST_KEYS[2])
    assert fetched.result.end_reason is EndReason.AUTH_FAILED
    assert fetched.result.detail.startswith("restricted:")
    assert not fetched.result.authenticated


async def test_nip42_without_a_key_ends_auth_required_on_the_hostile_relay(
    hostile: HostileRelay,
) -> None:
    fetched = await fetch(hostile.url_for(Behaviour.AUTH), hostile.host_port)
    assert fetched.result.end_reason is EndReason.AUTH_REQUIRED
    assert hostile.messages("AUTH") == []


# Leaving early


async def test_breaking_out_sends_close_and_keeps_the_connection(hostile: HostileRelay) -> None:
    async with (
        asyncio.timeout(PROMPTLY),
        RelayClient(hostile.url, allow=[hostile.host_port]) as client,
    ):
        subscription = client.subscribe(ALL, subscription_id="early")
        async with subscription:
            async for _ in subscription:
                break
        again = await client.fetch(ALL)
    assert subscription.result.end_reason is EndReason.STOPPED
    assert ["CLOSE", "early"] in hostile.received
    assert again.result.end_reason is EndReason.EOSE
    assert hostile.connections == 1


async def test_cancelling_the_reader_aborts_the_socket(hostile: HostileRelay) -> None:
    client = RelayClient(hostile.url_for(Behaviour.NO_EOSE), allow=[hostile.host_port])
    started = asyncio.Event()

    async def read_forever() -> None:
        async with client.subscribe(ALL, live=True) as subscription:
            async for _ in subscription:
                started.set()

    task = asyncio.create_task(read_forever())
    async with asyncio.timeout(PROMPTLY):
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not client.connected


async def test_a_second_concurrent_subscription_is_a_caller_error(hostile: HostileRelay) -> None:
    async with (
        RelayClient(hostile.url, allow=[hostile.host_port]) as client,
        client.subscribe(ALL),
    ):
        with pytest.raises(RuntimeError, match="already running"):
            async with client.subscribe(ALL):
                pytest.fail("a second subscription started")


async def test_every_event_of_a_crowded_second_is_served(
    local_relay_history: RunningRelay,
) -> None:
    """400 events share one second: a REQ for that second alone returns every one of them."""
    second = BASE_TIME + 50_000
    async with (
        asyncio.timeout(PROMPTLY),
        RelayClient(local_relay_history.url, allow=[local_relay_history.host_port]) as client,
    ):
        crowded = await client.fetch([Filter(since=second, until=second)])
    expected = {event.id for event in history() if event.created_at == second}
    assert len(expected) == 400
    assert {event.event_id for event in crowded.events} == expected
    assert {json.loads(event.text)["created_at"] for event in crowded.events} == {second}
