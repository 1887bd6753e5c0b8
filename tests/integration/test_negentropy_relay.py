"""NIP-77 on real sockets: our negentropy against rust-nostr's (nostr-sdk's LocalRelay) byte for
byte, and a reconciliation with a relay that misbehaves always ends with a reason.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import pytest
import websockets

from bigbrotr.nostr import Event, Filter
from connectors.client import NegEnd, NegentropyLimits, RelayClient
from connectors.negentropy import ItemSet, Negentropy
from tests.support.events import BASE_TIME, make_events
from tests.support.hostile_relay import Behaviour, HostileRelay
from tests.support.loader import load_events
from tests.support.relays import LOW_CAP, RunningRelay, local_relay

pytestmark = pytest.mark.integration

RELAY_FRAME_LIMIT = 60_000  # rust-nostr's relay answers within this many bytes per message
PROMPTLY = 30.0


@pytest.fixture(scope="module")
def relay_events() -> list[Event]:
    """2000 events over a day and 300 in one second from one author: several rounds apart."""
    spread = make_events(2000, label="neg interop")
    crowd = make_events(300, since=BASE_TIME + 500, same_second=True, label="neg crowd", author=0)
    return spread + crowd


@pytest.fixture(scope="module")
async def interop_relay(
    tmp_path_factory: pytest.TempPathFactory, relay_events: list[Event]
) -> AsyncIterator[RunningRelay]:
    with local_relay(tmp_path_factory.mktemp("neg-interop"), max_limit=LOW_CAP) as relay:
        assert await load_events(relay.url, relay_events) == {e.id for e in relay_events}
        yield relay


def _items(events: list[Event]) -> ItemSet:
    return ItemSet((event.created_at, bytes.fromhex(event.id)) for event in events)


def _archive(events: list[Event], seed: int) -> list[Event]:
    """70% of the relay's events, plus 25 the relay never had."""
    rng = random.Random(seed)
    extra = make_events(25, label=f"archive only {seed}")
    return [event for event in events if rng.random() < 0.7] + extra


async def test_every_relay_answer_is_byte_for_byte_what_our_responder_sends(
    interop_relay: RunningRelay, relay_events: list[Event]
) -> None:
    """Raw NIP-77 over a websocket: the relay's rust negentropy and ours, same set, same bytes."""
    archive = _archive(relay_events, seed=1)
    client = Negentropy(_items(archive))
    ours = Negentropy(_items(relay_events), frame_size_limit=RELAY_FRAME_LIMIT)
    message: bytes | None = client.initiate()
    need: set[str] = set()
    have: set[str] = set()
    rounds = 0
    async with (
        asyncio.timeout(PROMPTLY),
        websockets.connect(interop_relay.url, max_size=None) as ws,
    ):
        while message is not None:
            opening = ["NEG-OPEN", "interop", {}] if rounds == 0 else ["NEG-MSG", "interop"]
            await ws.send(json.dumps([*opening, message.hex()]))
            kind, sub, answer = json.loads(await ws.recv())
            assert (kind, sub) == ("NEG-MSG", "interop")
            assert bytes.fromhex(answer) == ours.respond(message)
            step = client.reconcile(bytes.fromhex(answer))
            need.update(item.hex() for item in step.need)
            have.update(item.hex() for item in step.have)
            message = step.message
            rounds += 1
        await ws.send(json.dumps(["NEG-CLOSE", "interop"]))
    assert rounds > 2, "the sets should take several rounds, some at the relay's frame limit"
    assert need == {e.id for e in relay_events} - {e.id for e in archive}
    assert have == {e.id for e in archive} - {e.id for e in relay_events}


async def test_client_reconciles_with_the_relay_within_our_frame_limit(
    interop_relay: RunningRelay, relay_events: list[Event]
) -> None:
    archive = _archive(relay_events, seed=2)
    limits = NegentropyLimits(frame_size_limit=4096)
    async with RelayClient(interop_relay.url, allow=[interop_relay.host_port]) as client:
        result = await client.reconcile(Filter(), _items(archive), limits)
        window = Filter(since=BASE_TIME + 500, until=BASE_TIME + 500)
        crowd = await client.reconcile(window, _items([]), limits)

    assert result.end is NegEnd.DONE, result.detail
    assert set(result.need) == {e.id for e in relay_events} - {e.id for e in archive}
    assert result.have == 25
    assert result.supported is True
    assert result.bytes_sent > 0
    assert result.bytes_received > 0
    assert crowd.end is NegEnd.DONE
    assert len(crowd.need) == 300, "the filter's window holds only the crowded second"


async def test_a_relay_without_nip77_is_detected_by_its_silence() -> None:
    async with (
        HostileRelay(make_events(3, label="no nip77")) as relay,
        RelayClient(relay.url, allow=[relay.host_port]) as client,
    ):
        limits = NegentropyLimits(answer_timeout=0.5)
        result = await client.reconcile(Filter(), _items([]), limits)
        fetched = await client.fetch([Filter()])

    assert (result.end, result.supported) == (NegEnd.UNSUPPORTED, False)
    assert "no answer to NEG-OPEN" in result.detail
    assert len(fetched.events) == 3, "the client still serves REQs after the failed attempt"


@pytest.mark.parametrize(
    ("behaviour", "end", "detail", "supported"),
    [
        (Behaviour.NEG_ERR, NegEnd.REFUSED, "NEG-ERR: error: shutting down", True),
        (Behaviour.NEG_ENDLESS, NegEnd.MAX_ROUNDS, "not reconciled after 5 rounds", True),
        (Behaviour.NEG_GARBAGE, NegEnd.PROTOCOL_ERROR, "not hex", True),
        (Behaviour.NEG_STALL, NegEnd.TIMEOUT, "no answer for 0.5s", True),
        (Behaviour.NEG_NOTICE, NegEnd.UNSUPPORTED, "NOTICE: this relay is a test", False),
    ],
)
async def test_a_misbehaving_relay_ends_the_reconciliation_with_a_reason(
    behaviour: Behaviour, end: NegEnd, detail: str, supported: bool
) -> None:
    limits = NegentropyLimits(max_rounds=5, answer_timeout=0.5, round_timeout=0.5)
    async with (
        HostileRelay(make_events(3, label="neg hostile"), default=behaviour) as relay,
        RelayClient(relay.url, allow=[relay.host_port]) as client,
    ):
        async with asyncio.timeout(PROMPTLY):
            result = await client.reconcile(Filter(), _items(make_events(40)), limits)

    assert result.end is end
    assert detail in result.detail
    assert result.supported is supported
