"""Relay servers for the relay client's tests: real relays written by others, and our hostile one.

The real relays are started once per session and loaded once; tests only read from them, except
the live-subscription test, which publishes events of its own label.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bigbrotr.config import Settings
from bigbrotr.producer import Producer, new_producer
from bigbrotr.topics import create_topics
from tests.support.events import history, make_events
from tests.support.hostile_relay import HostileRelay
from tests.support.loader import load_events
from tests.support.relays import LOW_CAP, RunningRelay, local_relay, nostr_relay


@pytest.fixture(scope="session")
async def nostr_relay_history(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningRelay]:
    """nostr-relay (Python, SQLite) holding `history()`."""
    with nostr_relay(tmp_path_factory.mktemp("nostr-relay")) as relay:
        accepted = await load_events(relay.url, history())
        assert accepted == {event.id for event in history()}
        yield relay


@pytest.fixture(scope="session")
async def local_relay_history(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningRelay]:
    """rust-nostr's LocalRelay holding `history()`."""
    with local_relay(tmp_path_factory.mktemp("local-relay")) as relay:
        accepted = await load_events(relay.url, history())
        assert accepted == {event.id for event in history()}
        yield relay


@pytest.fixture(scope="session")
async def low_cap_relay(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningRelay]:
    """A LocalRelay that answers at most `LOW_CAP` events per REQ, holding 200 events."""
    with local_relay(tmp_path_factory.mktemp("low-cap"), max_limit=LOW_CAP) as relay:
        await load_events(relay.url, make_events(200, label="low cap"))
        yield relay


@pytest.fixture(scope="session")
async def auth_relay(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningRelay]:
    """A LocalRelay that wants NIP-42 authentication before it answers a REQ; 30 events."""
    with local_relay(tmp_path_factory.mktemp("auth"), nip42=True) as relay:
        await load_events(relay.url, make_events(30, label="auth"))
        yield relay


@pytest.fixture
async def hostile() -> AsyncIterator[HostileRelay]:
    """A fresh hostile relay serving 20 events; the URL path picks the behaviour."""
    async with HostileRelay(make_events(20, label="hostile"), drip_interval=0.2) as relay:
        yield relay


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[Producer]:
    """A started producer of the test's settings, its topics created."""
    create_topics(settings.kafka)
    producer = new_producer(settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
