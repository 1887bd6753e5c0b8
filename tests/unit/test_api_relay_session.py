"""The archive relay's protocol, over an in-memory event source that applies NIP-01 `matches`."""

from __future__ import annotations

import json
from typing import Any

from bigbrotr.api.params import FilterLimits
from bigbrotr.api.relay import RelayLimits, RelaySession, information
from bigbrotr.archive import Keyset
from bigbrotr.nostr import Event, Filter, event_to_dict, matches
from tests.support.events import make_events

EVENTS = make_events(30, label="session")
LIMITS = RelayLimits(FilterLimits(5, 8, 20), max_subscriptions=2, max_filters=3)


class Memory:
    def __init__(self, stored: list[Event]) -> None:
        self.stored = stored
        self.asked: list[int] = []

    async def events(self, flt: Filter, *, limit: int, after: Keyset | None = None) -> list[Event]:
        self.asked.append(limit)
        found = [e for e in self.stored if matches(flt, e)]
        return sorted(found, key=lambda e: (-e.created_at, e.id))[:limit]


async def _allowed() -> bool:
    return True


async def _answer(session: RelaySession, message: Any) -> list[Any]:
    text = message if isinstance(message, str) else json.dumps(message)
    return [json.loads(frame) async for frame in session.handle(text)]


async def test_req_sends_each_matching_event_once_then_eose() -> None:
    source = Memory(EVENTS)
    session = RelaySession(source, LIMITS, _allowed)
    a, b = EVENTS[3], EVENTS[4]
    frames = await _answer(session, ["REQ", "s", {"ids": [a.id, b.id]}, {"ids": [b.id]}])
    assert frames == [
        ["EVENT", "s", event_to_dict(b)],
        ["EVENT", "s", event_to_dict(a)],
        ["EOSE", "s"],
    ]
    assert session.open == {"s"}


async def test_limits_default_and_cap_per_filter() -> None:
    source = Memory(EVENTS)
    session = RelaySession(source, LIMITS, _allowed)
    await _answer(session, ["REQ", "s", {}, {"limit": 100}, {"limit": 2}])
    assert source.asked == [5, 8, 2]


async def test_subscriptions_are_capped_until_one_is_closed() -> None:
    session = RelaySession(Memory(EVENTS), LIMITS, _allowed)
    for sub in ("a", "b"):
        assert (await _answer(session, ["REQ", sub, {"limit": 0}]))[-1] == ["EOSE", sub]
    assert (await _answer(session, ["REQ", "a", {"limit": 0}]))[-1] == ["EOSE", "a"]
    [closed] = await _answer(session, ["REQ", "c", {"limit": 0}])
    assert closed[:2] == ["CLOSED", "c"]
    assert closed[2].startswith("error: 2 subscriptions are open")
    assert await _answer(session, ["CLOSE", "a"]) == []
    assert (await _answer(session, ["REQ", "c", {"limit": 0}]))[-1] == ["EOSE", "c"]


async def test_publishing_is_blocked_and_junk_is_answered_with_a_notice() -> None:
    session = RelaySession(Memory(EVENTS), LIMITS, _allowed)
    [ok] = await _answer(session, ["EVENT", event_to_dict(EVENTS[0])])
    assert ok[:3] == ["OK", EVENTS[0].id, False]
    assert ok[3].startswith("blocked: ")
    for junk in ("[", "{}", "[]", "[1, 2]", '["EVENT", 5]', '["CLOSE"]', '["AUTH", "x"]'):
        [notice] = await _answer(session, junk)
        assert notice[0] == "NOTICE"
        assert notice[1].split(":")[0] in ("invalid", "unsupported")


async def test_bad_reqs_are_closed_with_the_reason() -> None:
    async def refused() -> bool:
        return False

    session = RelaySession(Memory(EVENTS), LIMITS, _allowed)
    cases = [
        (["REQ", "s"], "invalid: a REQ needs at least one filter"),
        (["REQ", "s", {}, {}, {}, {}], "invalid: at most 3 filters per REQ"),
        (["REQ", "s", []], "invalid: every filter is a JSON object"),
        (["REQ", "s", {"kinds": list(range(21))}], "invalid: the filter lists 21 values"),
        (["REQ", "s", {"limit": -1}], "invalid: filter 'limit'"),
    ]
    for message, reason in cases:
        [closed] = await _answer(session, message)
        assert closed[:2] == ["CLOSED", "s"]
        assert closed[2].startswith(reason)
    assert session.open == set()
    [notice] = await _answer(session, ["REQ", "x" * 65, {}])
    assert notice[0] == "NOTICE"
    limited = RelaySession(Memory(EVENTS), LIMITS, refused)
    [closed] = await _answer(limited, ["REQ", "s", {}])
    assert closed[2].startswith("rate-limited: ")


def test_the_nip11_document_announces_the_limits() -> None:
    document = information(LIMITS, 4096)
    assert document["supported_nips"] == [1, 11]
    assert document["limitation"]["max_limit"] == 8
    assert document["limitation"]["max_message_length"] == 4096
    assert document["limitation"]["restricted_writes"] is True
