"""Relay assignment on a real broker: processes in one group split the relays, exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Sequence

import pytest

from bigbrotr.config import Settings
from bigbrotr.nostr import Network
from bigbrotr.topics import create_topics
from connectors.assignment import AssignedRelay, RelayAssignment
from tests.support.announce import announce_relays, retire_relay
from tests.support.waiting import until

pytestmark = pytest.mark.integration

RELAYS = [f"wss://relay-{n}.example.com" for n in range(12)]


class Recorder:
    """A listener that keeps the relays it was told to serve."""

    def __init__(self) -> None:
        self.serving: set[str] = set()
        self.networks: dict[str, Network] = {}
        self.revocations = 0

    def relays_added(self, relays: Sequence[AssignedRelay]) -> None:
        for relay in relays:
            assert relay.url not in self.serving, f"{relay.url} added twice"
            self.serving.add(relay.url)
            self.networks[relay.url] = relay.network

    async def relays_revoked(self, urls: Collection[str]) -> None:
        assert set(urls) <= self.serving
        self.serving -= set(urls)
        self.revocations += 1


async def test_two_members_split_the_relays_and_one_takes_all_when_the_other_leaves(
    settings: Settings,
) -> None:
    create_topics(settings.kafka)
    await announce_relays(settings, [*RELAYS, "ws://abcdefghijklmnop.onion"])
    group = f"{settings.kafka.topic_prefix}assign-{uuid.uuid4().hex[:6]}"
    first, second = Recorder(), Recorder()
    a = RelayAssignment(settings.kafka, group, first)
    b = RelayAssignment(settings.kafka, group, second)
    everything = {*RELAYS, "ws://abcdefghijklmnop.onion"}
    task_a = asyncio.create_task(a.run())
    await until(lambda: first.serving == everything, "the only member serves every relay")
    assert first.networks["ws://abcdefghijklmnop.onion"] is Network.TOR
    task_b = asyncio.create_task(b.run())
    try:
        await until(
            lambda: (
                len(a.partitions) == len(b.partitions) == 3
                and first.serving | second.serving == everything
            ),
            "two members split six partitions",
        )
        assert not first.serving & second.serving
        assert a.relays == first.serving
        assert b.relays == second.serving

        await announce_relays(settings, ["wss://late.example.com"])
        await until(
            lambda: "wss://late.example.com" in first.serving | second.serving,
            "a relay announced later is picked up by its partition's owner",
        )
        await retire_relay(settings, RELAYS[0])
        await until(
            lambda: RELAYS[0] not in first.serving | second.serving,
            "a tombstone stops the relay",
        )
    finally:
        task_a.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task_a
    assert first.serving == set(), "a stopping member stops serving before it leaves"
    remaining = (everything | {"wss://late.example.com"}) - {RELAYS[0]}
    try:
        await until(lambda: second.serving == remaining, "the survivor takes every relay")
    finally:
        task_b.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task_b
